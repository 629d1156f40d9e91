#!/usr/bin/env python3
"""dns-server.py ADDR PORT NAME=IP[,IP2...]... - a tiny authoritative DNS
server for tests (UDP and TCP). A name answers its first address to its
first query of each type, its second to the next query and on (the last
one repeats): NAME=A,B is a rebinding from A to B. TTL 1. Unknown names:
NXDOMAIN. Writes each question to stdout."""
import socket
import struct
import sys
import threading

addr, port = sys.argv[1], int(sys.argv[2])
zone, asked = {}, {}
for arg in sys.argv[3:]:
    name, ips = arg.split("=", 1)
    zone[name.lower().rstrip(".")] = ips.split(",")
lock = threading.Lock()


def qname(msg, off):
    labels = []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode().lower())
        off += 1 + n
    return ".".join(labels), off + 1


def answer(q):
    qid, flags = struct.unpack(">HH", q[:4])
    name, off = qname(q, 12)
    qtype, qclass = struct.unpack(">HH", q[off:off + 4])
    question = q[12:off + 4]
    print("Q", name, qtype, flush=True)
    rrs = b""
    rcode = 3
    if name in zone:
        rcode = 0
        with lock:
            n = asked.get((name, qtype), 0)
            asked[(name, qtype)] = n + 1
        ip = zone[name][min(n, len(zone[name]) - 1)]
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        want = 28 if fam == socket.AF_INET6 else 1
        if qtype == want:
            rdata = socket.inet_pton(fam, ip)
            rrs = b"\xc0\x0c" + struct.pack(">HHIH", want, 1, 1, len(rdata)) + rdata
    hdr = struct.pack(">HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1, 1 if rrs else 0, 0, 0)
    return hdr + question + rrs


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        q, peer = s.recvfrom(4096)
        try:
            s.sendto(answer(q), peer)
        except Exception as e:  # a malformed query: no answer
            print("bad query", e, flush=True)


def tcp_client(c):
    with c:
        while True:
            n = c.recv(2)
            if len(n) < 2:
                return
            q = b""
            want = struct.unpack(">H", n)[0]
            while len(q) < want:
                d = c.recv(want - len(q))
                if not d:
                    return
                q += d
            a = answer(q)
            c.sendall(struct.pack(">H", len(a)) + a)


def tcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=tcp_client, args=(c,), daemon=True).start()


threading.Thread(target=tcp, daemon=True).start()
print("ready", flush=True)
udp()
