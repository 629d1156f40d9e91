#!/bin/sh
# e2b serve under hostile HTTP, before any key is checked: chunk sizes that
# overflow, bodies over the limit sent without Expect (the client must read
# the 413, not a reset), heads over 64 KiB, ambiguous framing, slow and idle
# clients, more connections than allowed, Host names that only look like
# sandbox hosts, and a burst of garbage. The server must answer each with
# E2B's error JSON and keep serving. No sandboxes: runs unprivileged too.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-http.sh"

KEY=$(e2b key create -q --name tests) || { echo "Bail out! cannot create a key"; exit 1; }
start_serve() { # name port [options]: a server whose pid is in $TRASH/<name>.pid
    local name=$1 port=$2; shift 2
    e2b serve --listen 127.0.0.1:$port "$@" > "$TRASH/$name.log" 2>&1 &
    echo $! > "$TRASH/$name.pid"
    test_atexit "kill \$(cat $TRASH/$name.pid)"
    wait_for 50 curl -sf -o /dev/null "http://127.0.0.1:$port/health"
}
PORT=$(free_port)
start_serve main $PORT --head-timeout 2 --idle-timeout 2 || { echo "Bail out! serve did not start"; exit 1; }
alive() { kill -0 "$(cat "$TRASH/main.pid")" && test "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 204; }

# raw.py PORT NAME: send attack NAME's bytes as they are; print the status
# and JSON message of the answer, or RESET / EOF.
cat > raw.py <<'EOF'
import json, socket, sys, time
CRLF = b"\r\n"
A = {
    "overflow": b"POST /sandboxes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"1\r\nX\r\nffffffffffffffff\r\nY",
    "negative": b"POST /sandboxes HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nY",
    "no-crlf": b"POST /sandboxes HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY",
    "big-length": b"POST /sandboxes HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n" + b"a" * 2000000,
    "big-chunks": b"POST /sandboxes HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + (b"10000\r\n" + b"b" * 65536 + CRLF) * 21,
    "huge-chunk": b"POST /sandboxes HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n" + b"z" * 300000,
    "big-head": b"GET /health HTTP/1.1\r\nX-Pad: " + b"p" * 70000 + b"\r\n\r\n",
    "long-target": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    "te-and-cl": b"POST /sandboxes HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-lengths": b"POST /sandboxes HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "bare-lf": b"GET /health HTTP/1.1\nHost: x\r\n\r\n",
    "obs-fold": b"GET /health HTTP/1.1\r\nHost: x\r\n y\r\n\r\n",
    "bad-port": b"GET /health HTTP/1.1\r\nE2b-Sandbox-Id: aaaaaaaaaaaaaaaaaaaa\r\nE2b-Sandbox-Port: 1e3\r\n\r\n",
}
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
got = b""
try:
    # in pieces, as a client that sends its whole body before it reads
    # does: whatever the server leaves unread must not reset the answer
    data = A[sys.argv[2]]
    for i in range(0, len(data), 65536):
        s.sendall(data[i:i + 65536])
        if len(data) > 65536:
            time.sleep(0.002)
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except (ConnectionResetError, BrokenPipeError):
    print("RESET")
    sys.exit(0)
if not got:
    print("EOF")
    sys.exit(0)
head, _, body = got.partition(b"\r\n\r\n")
print(head.split(b" ")[1].decode(), json.loads(body)["message"] if body else "")
EOF
raw() { python3 raw.py $PORT "$1"; }

test_expect_success 'a chunk size that overflows (the crash before any key check) is a 400' '
    raw overflow > out && test_grep "^400 " out && alive &&
    raw negative > out && test_grep "^400 " out && alive &&
    raw no-crlf > out && test_grep "^400 " out && alive
'

test_expect_success 'bodies over 1 MiB, without Expect: the client reads a 413, by length and by chunks' '
    raw big-length > out && test_grep "^413 request body over 1048576 bytes" out &&
    raw big-chunks > out && test_grep "^413 " out &&
    raw huge-chunk > out && test_grep "^413 " out &&
    head -c 2000000 /dev/zero | tr "\0" a > big &&
    test "$(curl -s -o out -w "%{http_code}" -H "Expect:" -H "X-API-Key: $KEY" --data-binary @big "http://127.0.0.1:$PORT/sandboxes")" = 413 &&
    test "$(curl -s -o out -w "%{http_code}" -H "Expect:" -H "Transfer-Encoding: chunked" -H "X-API-Key: $KEY" --data-binary @big "http://127.0.0.1:$PORT/sandboxes")" = 413 &&
    alive
'

test_expect_success 'a head over 64 KiB is a 431; too long a target a 414' '
    raw big-head > out && test_grep "^431 " out &&
    raw long-target > out && test_grep "^414 " out && alive
'

test_expect_success 'ambiguous or broken framing is refused: TE with CL, two lengths, bare LF, obs-fold' '
    raw te-and-cl > out && test_grep "^400 " out &&
    raw two-lengths > out && test_grep "^400 " out &&
    raw bare-lf > out && test_grep "^400 " out &&
    raw obs-fold > out && test_grep "^400 " out &&
    raw bad-port > out && test_grep "^400 E2b-Sandbox-Port .1e3. is not a TCP port" out &&
    alive
'

test_expect_success 'ambiguous framing is refused as envd refuses it (t3000): 400, connection closed' '
    test "$(http_framing $PORT te-and-cl)" = "400 closed" &&
    test "$(http_framing $PORT cl-after-te)" = "400 closed" &&
    test "$(http_framing $PORT two-lengths)" = "400 closed" &&
    test "$(http_framing $PORT plain)" = "405 204 open" && alive
'

test_expect_success 'a slow head gets 408 and the connection closed, in bounded time, while others are served' '
    cat > slow.py <<-EOF &&
	import socket, time
	s = socket.create_connection(("127.0.0.1", $PORT), timeout=30)
	s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
	t0 = time.time()
	got = b""
	while True:
	    b = s.recv(4096)
	    if not b:
	        break
	    got += b
	took = time.time() - t0
	assert got.startswith(b"HTTP/1.1 408"), got
	assert 1.5 < took < 10, took
	EOF
    { { timeout 60 python3 slow.py > slow.out 2>&1; echo $? > slow.rc; } & } &&
    alive &&
    wait_for 150 test -s slow.rc && test "$(cat slow.rc)" = 0
'

test_expect_success 'an idle kept-alive connection is closed after --idle-timeout; silence on a new one too' '
    cat > idle.py <<-EOF &&
	import socket, time
	s = socket.create_connection(("127.0.0.1", $PORT), timeout=30)
	s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	assert s.recv(4096).startswith(b"HTTP/1.1 204")
	t0 = time.time()
	assert s.recv(4096) == b""
	assert 1.5 < time.time() - t0 < 10
	s2 = socket.create_connection(("127.0.0.1", $PORT), timeout=30)
	t0 = time.time()
	assert s2.recv(4096) == b""
	assert time.time() - t0 < 10
	EOF
    timeout 60 python3 idle.py
'

test_expect_success 'more connections than --max-connections: the rest get 503 JSON, then service resumes' '
    P2=$(free_port) && start_serve capped $P2 --max-connections 3 &&
    cat > cap.py <<-EOF &&
	import json, socket, time
	held = [socket.create_connection(("127.0.0.1", $P2), timeout=10) for _ in range(3)]
	time.sleep(0.3)
	s = socket.create_connection(("127.0.0.1", $P2), timeout=10)
	s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	got = b""
	while True:
	    b = s.recv(4096)
	    if not b:
	        break
	    got += b
	assert got.startswith(b"HTTP/1.1 503"), got
	assert json.loads(got.split(b"\r\n\r\n", 1)[1])["code"] == 503
	for h in held:
	    h.close()
	EOF
    timeout 60 python3 cap.py &&
    wait_for 50 sh -c "test \$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:$P2/health) = 204"
'

test_expect_success 'hosts that only look like sandbox hosts stay API requests' '
    test "$(curl -s -o out -w "%{http_code}" -H "Host: 10-0-0-5.nip.io" "http://127.0.0.1:$PORT/v2/sandboxes")" = 401 &&
    test "$(curl -s -o out -w "%{http_code}" -H "Host: 3000-abc.example.com" "http://127.0.0.1:$PORT/v2/sandboxes")" = 401 &&
    test "$(curl -s -o out -w "%{http_code}" -H "Host: 49983-aaaaaaaaaaaaaaaaaaaa.example.com" "http://127.0.0.1:$PORT/health")" = 502 &&
    test_grep "The sandbox was not found" out &&
    P3=$(free_port) && start_serve domain $P3 --domain e2b.local &&
    test "$(curl -s -o out -w "%{http_code}" -H "Host: 49983-aaaaaaaaaaaaaaaaaaaa.example.com" "http://127.0.0.1:$P3/v2/sandboxes")" = 401 &&
    test "$(curl -s -o out -w "%{http_code}" -H "Host: 49983-abc.e2b.local" "http://127.0.0.1:$P3/health")" = 502
'

test_expect_success 'wrong methods are 405 with Allow; 204 carries no Content-Length' '
    test "$(curl -s -D hdr -o out -w "%{http_code}" -X PUT -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT/sandboxes")" = 405 &&
    grep -qi "^Allow: GET, POST" hdr && test_grep "not allowed" out &&
    test "$(curl -s -D hdr -o out -w "%{http_code}" -X PUT -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT/templates/host")" = 405 &&
    grep -qi "^Allow: GET, POST, PATCH, DELETE" hdr &&
    curl -s -D hdr -o /dev/null "http://127.0.0.1:$PORT/health" && ! grep -qi "^Content-Length" hdr
'

test_expect_success 'keys made at the same time are all kept, and all work' '
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do e2b key create -q --name "par$i" > "k$i" & done && wait &&
    test "$(e2b --json key list | grep -c "\"name\": \"par")" = 16 &&
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
        test "$(curl -s -o /dev/null -w "%{http_code}" -H "X-API-Key: $(cat k$i)" "http://127.0.0.1:$PORT/v2/sandboxes")" = 200 || return 1
    done
'

test_expect_success 'a burst of garbage and cut requests: the server keeps serving' '
    cat > garbage.py <<-EOF &&
	import random, socket
	rnd = random.Random(6020)
	seeds = [b"POST /sandboxes HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
	         b"GET /v2/sandboxes?limit=5 HTTP/1.1\r\nHost: 49983-aaaaaaaaaaaaaaaaaaaa.x\r\n\r\n",
	         b"POST /v2/sandboxes HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"a\":\"b\"}"]
	for i in range(300):
	    d = bytearray(rnd.choice(seeds))
	    for _ in range(rnd.randint(1, 6)):
	        d[rnd.randrange(len(d))] = rnd.choice(b"\r\n\0 :-f9%\xff")
	    d = bytes(d[: rnd.randint(1, len(d))])
	    s = socket.create_connection(("127.0.0.1", $PORT), timeout=10)
	    try:
	        s.sendall(d)
	        s.shutdown(socket.SHUT_WR)
	        while s.recv(65536):
	            pass
	    except OSError:
	        pass
	    s.close()
	EOF
    timeout 120 python3 garbage.py && alive &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT/v2/sandboxes")" = 200
'

test_done
