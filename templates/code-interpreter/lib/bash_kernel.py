"""A Jupyter kernel for bash: one interactive bash (no line editing, no job
control) keeps the state of a context (variables, functions, cd). A cell is
written to a file and sourced (stdin /dev/null, so a command reading input
cannot eat the next cell), then a marker with a random nonce says on stdout
(with the status) and on stderr that the cell is done. An interrupt (SIGINT
to the group) makes interactive bash abandon the cell and go on with the
marker line, status 130. A non-zero status is the cell's error, as
bash_kernel reports it (ename "", evalue the status)."""
import os
import secrets
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipekernel import PipeKernel  # noqa: E402


class BashKernel(PipeKernel):
    implementation = "e2b-bash"
    language = "bash"
    language_info = {"name": "bash", "mimetype": "text/x-sh", "file_extension": ".sh",
                     "codemirror_mode": "shell"}
    banner = "bash"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dir = tempfile.mkdtemp(prefix="e2b-bash-")
        self.cell_file = os.path.join(self.dir, "cell.sh")
        self.nonce = secrets.token_hex(8)
        env = dict(os.environ, PS1="", PS2="", TERM="dumb")
        self.child = subprocess.Popen(["bash", "--norc", "--noprofile", "--noediting", "-i"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=env)
        self.write("set +H; set +o history; unset PROMPT_COMMAND; PS1=; PS2=\n")
        self.run_until_marker(show=False)

    def write(self, s):
        self.child.stdin.write(s.encode())
        self.child.stdin.flush()

    def run_until_marker(self, show=True):
        """Send the marker line and stream output up to it; the status."""
        n = self.nonce
        self.write("printf '\\036%s:%%d\\036' \"$?\"; printf '\\036%s:\\036' >&2\n" % (n, n))
        out_fd, err_fd = self.child.stdout.fileno(), self.child.stderr.fileno()
        pending = {out_fd: "", err_fd: ""}
        done = {out_fd: False, err_fd: False}
        status = [0]
        mark = "\x1e" + n + ":"

        def until(fd, data):
            text = pending[fd] + self.decode(fd, data)
            i = text.find(mark)
            if i >= 0:
                j = text.find("\x1e", i + len(mark))
                if j >= 0:
                    if fd == out_fd:
                        try:
                            status[0] = int(text[i + len(mark):j])
                        except ValueError:
                            status[0] = 1
                    done[fd] = True
                    pending[fd] = ""
                    return done[out_fd] and done[err_fd], text[:i] if show else ""
                pending[fd] = text[i:]
                return False, text[:i] if show else ""
            # keep what could be the start of a marker
            keep = text.rfind("\x1e")
            if keep >= 0 and len(text) - keep <= len(mark) + 12:
                pending[fd] = text[keep:]
                text = text[:keep]
            else:
                pending[fd] = ""
            return False, text if show else ""

        self.stream_pipes(until)
        return status[0]

    def do_execute(self, code, silent, store_history=True, user_expressions=None,
                   allow_stdin=False, *, cell_id=None):
        if not code.strip():
            return self.ok_reply()
        with open(self.cell_file, "w") as f:
            f.write(code)
            if not code.endswith("\n"):
                f.write("\n")
        self.write(". %s </dev/null\n" % shlex.quote(self.cell_file))
        self.interrupted = False
        try:
            status = self.run_until_marker(show=not silent)
        except EOFError:
            return self.error_reply("BashExited", "bash exited", [])
        if self.interrupted and not silent:
            return self.error_reply("KeyboardInterrupt", "interrupted (status %d)" % status, [])
        if status != 0 and not silent:
            return self.error_reply("", str(status), [])
        return self.ok_reply()

    def on_interrupt(self):
        self.interrupted = True

    def do_shutdown(self, restart):
        try:
            self.child.kill()
        except OSError:
            pass
        return {"status": "ok", "restart": restart}


if __name__ == "__main__":
    from ipykernel.kernelapp import IPKernelApp
    IPKernelApp.launch_instance(kernel_class=BashKernel)
