"""What the bash and JavaScript kernels share: a Jupyter kernel (ipykernel's
Kernel base class, so the five channels, signing and the message loop are
ipykernel's own) in front of a child process that runs the code, its stdout
and stderr streamed to the client as they come.

Debian packages no Jupyter kernel for bash or JavaScript (bash_kernel and
ijavascript are on PyPI and npm), so these two are small wrapper kernels,
the kind bash_kernel itself is.

The child is in the kernel's process group: an interrupt (SIGINT to the
group) reaches both; the kernel ignores it while idle, as ipykernel does.
"""
import codecs
import fcntl
import os
import select

from ipykernel.kernelbase import Kernel


class PipeKernel(Kernel):
    """Subclasses start self.child (stdout and stderr pipes) and say in
    run_cell when the cell is done."""

    implementation_version = "1.0"

    def stream_pipes(self, until, extra_fds=()):
        """Send the child's stdout and stderr as they come, until until(fd,
        data) returns True for a chunk of an extra fd (or of stdout/stderr,
        which it may rewrite: it returns (done, text)). KeyboardInterrupt
        (the group got SIGINT) is passed to on_interrupt and waiting goes on:
        the child reports the interrupted cell itself."""
        fds = {self.child.stdout.fileno(): "stdout", self.child.stderr.fileno(): "stderr"}
        for fd in list(fds) + list(extra_fds):
            fl = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        watch = list(fds) + list(extra_fds)
        while True:
            try:
                ready, _, _ = select.select(watch, [], [])
            except KeyboardInterrupt:
                self.on_interrupt()
                continue
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    raise EOFError("the %s process ended" % self.language)
                done, text = until(fd, data)
                if text and fd in fds:
                    self.send_response(self.iopub_socket, "stream", {"name": fds[fd], "text": text})
                if done:
                    self.drain(fds)
                    return

    def drain(self, fds):
        """What the child wrote before it said the cell was done."""
        for fd, name in fds.items():
            chunks = []
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if not data:
                    break
                chunks.append(data)
            if chunks:
                text = self.decode(fd, b"".join(chunks))
                if text:
                    self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

    def decode(self, fd, data):
        """UTF-8 split across reads stays whole."""
        decoders = self.__dict__.setdefault("_decoders", {})
        if fd not in decoders:
            decoders[fd] = codecs.getincrementaldecoder("utf-8")("replace")
        return decoders[fd].decode(data)

    def on_interrupt(self):
        pass

    def error_reply(self, ename, evalue, traceback):
        self.send_response(self.iopub_socket, "error",
                           {"ename": ename, "evalue": evalue, "traceback": traceback})
        return {"status": "error", "execution_count": self.execution_count, "ename": ename,
                "evalue": evalue, "traceback": traceback}

    def ok_reply(self):
        return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                "user_expressions": {}}
