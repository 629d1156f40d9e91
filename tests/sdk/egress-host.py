#!/usr/bin/env python3
"""egress-host.py CERT KEY - the far side of the network tests: on every
address of its network namespace, HTTP on ports 80 and 8080 and HTTPS on
443 (CERT, KEY), each answering "host=<Host> token=<X-Token> port=<port>"."""
import http.server
import ssl
import sys
import threading


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("host=%s token=%s port=%d\n" % (self.headers.get("Host"), self.headers.get("X-Token"),
                                                  self.server.server_address[1])).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(port, tls=False):
    srv = http.server.ThreadingHTTPServer(("0.0.0.0", port), Echo)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


for port, tls in ((80, False), (8080, False), (443, True)):
    threading.Thread(target=serve, args=(port, tls), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
