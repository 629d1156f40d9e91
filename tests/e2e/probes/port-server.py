# port-server.py PORT ADDR - a small HTTP server the serve router tests reach
# inside a sandbox: GET /big?n=N sends N bytes, POST echoes its body back,
# GET /headers lists the request's headers, and an Upgrade request gets a
# 101 and then an echo of whatever bytes follow (as a WebSocket would).
import socket, sys, threading

def handle(c):
    f = c.makefile("rb")
    line = f.readline().decode()
    if not line:
        return
    method, target, _ = line.split(" ", 2)
    headers = {}
    raw = []
    while True:
        h = f.readline().decode()
        if h in ("\r\n", "\n", ""):
            break
        raw.append(h.rstrip("\r\n"))
        k, v = h.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if "upgrade" in headers:
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + headers["upgrade"].encode() +
                  b"\r\nConnection: Upgrade\r\n\r\n")
        while True:
            d = f.read1(65536)
            if not d:
                break
            c.sendall(d)
        return
    if method == "POST":
        n = int(headers.get("content-length", "0"))
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
        while n:
            d = f.read1(min(n, 65536))
            if not d:
                break
            c.sendall(d)
            n -= len(d)
        return
    if target.startswith("/big?n="):
        n = int(target[7:])
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
        chunk = bytes(range(256)) * 256
        while n:
            k = min(n, len(chunk))
            c.sendall(chunk[:k])
            n -= k
        return
    body = ("\n".join(raw) + "\n").encode() if target == "/headers" else b"hello from the sandbox\n"
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)

def serve(c):
    try:
        handle(c)
    finally:
        c.close()

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0", int(sys.argv[1])))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
