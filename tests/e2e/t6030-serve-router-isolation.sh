#!/bin/sh
# The envd router must never let one sandbox's connection carry another
# sandbox's traffic. A hostile server in sandbox A answers keep-alive, adds
# a forged second response and holds its connections open; a pooled client
# (Node's fetch, one origin for every sandbox as E2B_SANDBOX_URL makes it)
# then calls sandbox B's envd with B's token. B's request must reach B, and
# A's server must never see it: relayed answers say "Connection: close",
# nothing past a request or its answer is relayed, and the connection ends.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

KEY=$(e2b key create -q --name tests) || { echo "Bail out! cannot create a key"; exit 1; }
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
e2b serve --listen 127.0.0.1:$PORT --deny-internet > "$TRASH/serve.log" 2>&1 &
echo $! > "$TRASH/serve.pid"
test_atexit "kill \$(cat $TRASH/serve.pid)"
wait_for 50 curl -sf -o /dev/null "$URL/health" || { echo "Bail out! serve did not start"; exit 1; }

create() { # -> "ID TOKEN" of a new sandbox (v2: always with a token)
    curl -s -X POST -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
        --data-binary '{"templateID":"host","timeout":300}' "$URL/v2/sandboxes" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["sandboxID"], d["envdAccessToken"])'
}
set -- $(create) && A=$1 TA=$2 && test_atexit "e2b --api-url '' sandbox kill $A" &&
set -- $(create) && B=$1 TB=$2 && test_atexit "e2b --api-url '' sandbox kill $B" &&
test -n "$TB" || { echo "Bail out! cannot create sandboxes"; exit 1; }

HP=$(free_port)
cat > hostile.py <<'EOF'
# In sandbox A: every request is answered keep-alive, with a forged second
# response glued on, and the connection is held open. Each request head it
# ever receives is appended to the log.
import socket, sys, threading
port, log = int(sys.argv[1]), sys.argv[2]
def handle(c):
    buf = b""
    try:
        while True:
            d = c.recv(65536)
            if not d:
                return
            buf += d
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                with open(log, "ab") as f:
                    f.write(head + b"\r\n----\r\n")
                path = head.split(b" ")[1]
                if path == b"/switch":
                    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: Upgrade\r\n\r\n")
                elif path == b"/lengths":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok")
                else:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n"
                              b"Keep-Alive: timeout=600\r\n\r\nok"
                              b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\nforged")
    except OSError:
        pass
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
open(log, "wb").close()
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
EOF
e2b --api-url "" sandbox files write "$A" /tmp/hostile.py < hostile.py &&
    e2b --api-url "" sandbox exec -b "$A" "exec timeout 300 python3 /tmp/hostile.py $HP /tmp/hostile.log" >/dev/null ||
    { echo "Bail out! cannot start the hostile server"; exit 1; }
wait_for 100 sh -c "curl -sf -m 5 -o /dev/null -H 'E2b-Sandbox-Id: $A' -H 'E2b-Sandbox-Port: $HP' $URL/warmup"
seen() { e2b --api-url "" sandbox exec "$A" "cat /tmp/hostile.log"; }

test_expect_success 'a pooled client: B'"'"'s request, after A'"'"'s keep-alive answer, reaches B and never A' '
    cat > pooled.mjs <<-EOF &&
	const [base, A, port, B, tokB] = process.argv.slice(2)
	const r1 = await fetch(base + "/first", { headers: { "E2b-Sandbox-Id": A, "E2b-Sandbox-Port": port } })
	const t1 = await r1.text()
	const c1 = r1.headers.get("connection")
	const r2 = await fetch(base + "/envs", { headers: { "E2b-Sandbox-Id": B, "E2b-Sandbox-Port": "49983", "X-Access-Token": tokB } })
	const t2 = await r2.text()
	console.log(JSON.stringify({ t1, c1, s2: r2.status, t2 }))
	EOF
    timeout 60 node pooled.mjs "$URL" "$A" "$HP" "$B" "$TB" > pooled.out &&
    python3 -c "import json,sys; d=json.load(open(\"pooled.out\")); assert d[\"t1\"]==\"ok\" and d[\"c1\"]==\"close\", d; assert d[\"s2\"]==200 and \"$B\" in d[\"t2\"], d" &&
    seen > log && test_grep -v "$TB" log && test_grep -v "/envs" log && test_grep "/first" log
'

test_expect_success 'a request pipelined behind one for A is dropped, not relayed; the forged answer never arrives' '
    cat > pipelined.py <<-EOF &&
	import socket
	s = socket.create_connection(("127.0.0.1", $PORT), timeout=30)
	s.sendall(b"GET /pipelined HTTP/1.1\r\nHost: x\r\nE2b-Sandbox-Id: $A\r\nE2b-Sandbox-Port: $HP\r\n\r\n"
	          b"GET /envs HTTP/1.1\r\nHost: x\r\nE2b-Sandbox-Id: $B\r\nX-Access-Token: $TB\r\n\r\n")
	got = b""
	while True:
	    d = s.recv(65536)
	    if not d:
	        break
	    got += d
	head, _, body = got.partition(b"\r\n\r\n")
	assert body == b"ok", got
	assert b"Connection: close" in head and b"keep-alive" not in head.lower(), head
	assert got.count(b"HTTP/1.1") == 1, got
	EOF
    timeout 60 python3 pipelined.py &&
    seen > log && test_grep "/pipelined" log && test_grep -v "$TB" log
'

test_expect_success 'a 101 nobody asked for and conflicting lengths from the sandbox: 502, nothing relayed' '
    test "$(curl -s -m 30 -o out -w "%{http_code}" -H "E2b-Sandbox-Id: $A" -H "E2b-Sandbox-Port: $HP" "$URL/switch")" = 502 &&
    test_grep "switched protocols" out &&
    test "$(curl -s -m 30 -o out -w "%{http_code}" -H "E2b-Sandbox-Id: $A" -H "E2b-Sandbox-Port: $HP" "$URL/lengths")" = 502 &&
    test_grep "conflicting body lengths" out
'

test_expect_success 'the router closed its end of every connection to A'"'"'s server' '
    wait_for 100 sh -c "test \$(e2b --api-url \"\" sandbox exec $A \"ss -Htn state established dst 127.0.0.1:$HP\" | wc -l) = 0"
'

test_done
