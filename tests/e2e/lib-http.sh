# lib-http.sh - raw HTTP/1.1 requests for tests of how a server reads them;
# source after test-lib.sh. `e2b serve` (its API and its router) and envd
# must frame every request alike, or a request the router passes on could
# mean two things (request smuggling); t6020 and t3000 both use this.
#
#   http_framing PORT NAME   send request NAME (see below) on a new connection
#                            to 127.0.0.1:PORT, with a second request, GET
#                            /health, right behind it on the same connection.
#                            Prints the status of each answer, then "closed"
#                            when the server closed the connection before a
#                            second answer, else "open"; "400 closed":
#                            refused, and nothing after it was read.
#
# Requests (each with a body the other reading would frame differently):
#   te-and-cl     Content-Length: 4 and Transfer-Encoding: chunked
#   cl-after-te   the same, Transfer-Encoding first
#   two-lengths   Content-Length: 4 and Content-Length: 5
#   plain         a well-framed POST with Content-Length (the control: both
#                 requests answered, the connection kept)

cat > "$TRASH/http-framing.py" <<'EOF'
import re, socket, sys
FOLLOW = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
REQ = {
    "te-and-cl": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "cl-after-te": b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    "two-lengths": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                   b"Content-Length: 5\r\n\r\nabcde",
    "plain": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd",
}
STATUS = rb"HTTP/1\.[01] (\d{3}) "
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(REQ[sys.argv[2]] + FOLLOW)
got, end = b"", "closed"
try:
    while len(re.findall(STATUS, got)) < 2: # the second answered: the connection went on
        b = s.recv(65536)
        if not b:
            break
        got += b
    else:
        end = "open"
except socket.timeout:
    end = "open"
except ConnectionResetError:
    end = "reset"
print(" ".join([m.decode() for m in re.findall(STATUS, got)] + [end]))
EOF

http_framing() {
    python3 "$TRASH/http-framing.py" "$1" "$2"
}
