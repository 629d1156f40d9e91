"""A Jupyter kernel for JavaScript on Debian's Node.js: one node process
(js_driver.js) keeps a context's state; cells go to it as JSON lines on a
pipe and answers come back on another, while its stdout and stderr stream
to the client as they come. The last expression's value is the cell's
execute_result (text/plain, util.inspect); a thrown error is the cell's
error (name, message, stack). Interrupt: SIGINT to the group stops the
running cell (node's breakOnSigint)."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipekernel import PipeKernel  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def node_version():
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip().lstrip("v")
    except OSError:
        return ""


class JavaScriptKernel(PipeKernel):
    implementation = "e2b-javascript"
    language = "javascript"
    banner = "JavaScript (Node.js)"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.language_info = {"name": "javascript", "version": node_version(),
                              "mimetype": "application/javascript", "file_extension": ".js"}
        cells_r, self.cells_w = os.pipe()
        self.answers_r, answers_w = os.pipe()
        env = dict(os.environ, E2B_JS_CELLS_FD=str(cells_r), E2B_JS_ANSWERS_FD=str(answers_w))
        self.child = subprocess.Popen(["node", os.path.join(HERE, "js_driver.js")],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, pass_fds=(cells_r, answers_w), env=env)
        os.close(cells_r)
        os.close(answers_w)
        self.answer_buf = b""

    def do_execute(self, code, silent, store_history=True, user_expressions=None,
                   allow_stdin=False, *, cell_id=None):
        if not code.strip():
            return self.ok_reply()
        os.write(self.cells_w, (json.dumps({"code": code}) + "\n").encode())
        result = {}

        def until(fd, data):
            if fd != self.answers_r:
                return False, "" if silent else self.decode(fd, data)
            self.answer_buf += data
            if b"\n" not in self.answer_buf:
                return False, ""
            line, self.answer_buf = self.answer_buf.split(b"\n", 1)
            result.update(json.loads(line))
            return True, ""

        try:
            self.stream_pipes(until, extra_fds=(self.answers_r,))
        except EOFError:
            return self.error_reply("Error", "node exited", [])
        if silent:
            return self.ok_reply()
        if not result.get("ok"):
            name, message = result.get("name", "Error"), result.get("message", "")
            stack = result.get("stack") or ("%s: %s" % (name, message))
            return self.error_reply(name, message, [stack])
        if result.get("text") is not None:
            self.send_response(self.iopub_socket, "execute_result",
                               {"execution_count": self.execution_count,
                                "data": {"text/plain": result["text"]}, "metadata": {}})
        return self.ok_reply()

    def do_shutdown(self, restart):
        try:
            self.child.kill()
        except OSError:
            pass
        return {"status": "ok", "restart": restart}


if __name__ == "__main__":
    from ipykernel.kernelapp import IPKernelApp
    IPKernelApp.launch_instance(kernel_class=JavaScriptKernel)
