#!/usr/bin/env python3
"""A fault injector on loopback: answers every request with a fixed status.

    fake-api.py PORTFILE STATUS [KEY]

With KEY, requests carrying `X-API-Key: KEY` get 200 `[]` and others STATUS.
Used where a test needs an API that refuses, errors or (before `e2b serve`
can answer) accepts one known key. Writes its port to PORTFILE.
"""
import http.server, json, sys

portfile, status, key = sys.argv[1], int(sys.argv[2]), (sys.argv[3] if len(sys.argv) > 3 else None)

class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        ok = key is not None and self.headers.get("X-API-Key") == key
        code = 200 if ok else status
        body = b"[]" if ok else json.dumps({"code": code, "message": "fake api says no"}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_DELETE = answer
    def log_message(self, *a):
        pass

srv = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os; os.rename(portfile + ".tmp", portfile)
srv.timeout = 60
srv.serve_forever()
