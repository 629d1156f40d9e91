#!/usr/bin/env python3
"""registry-fault.py - a loopback stand-in in front of a test registry.

  registry-fault.py PORTFILE 500                 every request gets 500 and a registry error body
  registry-fault.py PORTFILE token UPSTREAM USER:PASS
                                                 Bearer token auth (realm /token on this server,
                                                 Basic USER:PASS required there); with a good
                                                 token, manifests are proxied and blobs get a
                                                 307 to UPSTREAM
  registry-fault.py PORTFILE cut UPSTREAM        proxy; a blob asked for without Range gets only
                                                 its first half, then the connection closes

It listens on a free 127.0.0.1 port and writes the port to PORTFILE.
"""
import base64
import http.server
import json
import sys
import urllib.error
import urllib.request

MODE = sys.argv[2]
UPSTREAM = sys.argv[3] if len(sys.argv) > 3 else None
CREDS = sys.argv[4] if len(sys.argv) > 4 else None
TOKEN = "t0ken-for-tests"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def upstream(self, extra=()):
        req = urllib.request.Request("http://%s%s" % (UPSTREAM, self.path))
        for h in ("Accept", "Range"):
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        try:
            r = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            r = e
        return r.status if hasattr(r, "status") else r.code, r.read(), r.headers

    def do_GET(self):
        if MODE == "500":
            body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "injected failure"}]})
            return self.send(500, body.encode(), [("Content-Type", "application/json")])
        if MODE == "token":
            host = self.headers.get("Host")
            if self.path.startswith("/token"):
                want = "Basic " + base64.b64encode(CREDS.encode()).decode()
                if self.headers.get("Authorization") != want:
                    return self.send(401, b'{"details":"bad credentials"}')
                return self.send(200, json.dumps({"token": TOKEN}).encode(),
                                 [("Content-Type", "application/json")])
            if self.headers.get("Authorization") != "Bearer " + TOKEN:
                chal = 'Bearer realm="http://%s/token",service="fault",scope="repository:%s:pull"' % (
                    host, self.path.split("/")[2] + "/" + self.path.split("/")[3]
                    if self.path.count("/") > 3 else "")
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}',
                                 [("WWW-Authenticate", chal)])
            if "/blobs/" in self.path:
                return self.send(307, b"", [("Location", "http://%s%s" % (UPSTREAM, self.path))])
        status, body, hdrs = self.upstream()
        keep = [(k, hdrs[k]) for k in ("Content-Type", "Docker-Content-Digest", "Content-Range")
                if hdrs.get(k)]
        if MODE == "cut" and "/blobs/" in self.path and not self.headers.get("Range") \
                and status == 200:
            self.send_response(200)
            for k, v in keep:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send(status, body, keep)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os  # noqa: E402
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
