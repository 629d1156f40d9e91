#!/bin/sh
# e2b serve's router to ports other than envd's: a server a process runs in
# a sandbox (its own network namespace) is reached by E2b-Sandbox-Id and
# E2b-Sandbox-Port headers and by a <port>-<id>.<domain> host, bodies
# streamed both ways, upgrades relayed; a closed port or an unknown sandbox
# gets E2B's 502 JSON.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

test_have_root || { echo "1..0 # SKIP local sandboxes need root"; exit 0; }
KEY=$(e2b key create -q --name tests) || { echo "Bail out! cannot create a key"; exit 1; }
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
e2b serve --listen 127.0.0.1:$PORT > "$TRASH/serve.log" 2>&1 &
test_atexit "kill $!"
wait_for 50 curl -sf -o /dev/null "$URL/health" || { echo "Bail out! serve did not start"; exit 1; }
alive() { test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 204; }

# A port free on the host too, so a connection that reached the host's
# network instead of the sandbox's would be refused.
GP=$(free_port)
sbx_create host --timeout 300 || { echo "Bail out! cannot create a sandbox"; exit 1; }
ID=$SBX
e2b sandbox files write "$ID" /tmp/port-server.py < "$TEST_DIR/probes/port-server.py" &&
    e2b sandbox exec -b "$ID" "exec timeout 300 python3 /tmp/port-server.py $GP 127.0.0.1" >/dev/null ||
    { echo "Bail out! cannot start the server in the sandbox"; exit 1; }
hdr() { curl -s -m 60 -H "E2b-Sandbox-Id: $ID" -H "E2b-Sandbox-Port: $GP" "$@"; }
wait_for 100 sh -c "curl -sf -m 5 -H 'E2b-Sandbox-Id: $ID' -H 'E2b-Sandbox-Port: $GP' $URL/ >/dev/null"

test_expect_success 'a port in the sandbox by headers and by host name, not on the host' '
    test "$(hdr "$URL/")" = "hello from the sandbox" &&
    test "$(curl -s -m 60 -H "Host: $GP-$ID.e2b.local" "$URL/")" = "hello from the sandbox" &&
    test "$(curl -s -m 60 -H "Host: $GP-$ID-oldclient.e2b.local:$PORT" "$URL/")" = "hello from the sandbox" &&
    ! curl -s -m 5 -o /dev/null "http://127.0.0.1:$GP/"
'

test_expect_success 'routing headers stay with the router; the rest reach the program' '
    hdr -H "X-Custom: kept" "$URL/headers" >h.out &&
    test_grep "X-Custom: kept" h.out && test_grep -v "E2b-Sandbox" h.out
'

test_expect_success 'large bodies stream both ways' '
    head -c 30000000 /dev/urandom >up.bin &&
    hdr --data-binary @up.bin -H "Content-Type: application/octet-stream" "$URL/echo" >echo.bin &&
    cmp up.bin echo.bin &&
    hdr -o down.bin "$URL/big?n=50000000" &&
    test "$(wc -c <down.bin)" = 50000000 &&
    python3 -c "import sys; d=open(\"down.bin\",\"rb\").read(); c=bytes(range(256))*256; assert all(d[i:i+65536]==c[:len(d[i:i+65536])] for i in range(0,len(d),65536))"
'

test_expect_success 'an upgraded connection relays bytes both ways as they come' '
    cat >ws.py <<-EOF &&
	import socket, sys
	s = socket.create_connection(("127.0.0.1", $PORT), timeout=60)
	s.sendall(b"GET /chat HTTP/1.1\r\nHost: $GP-$ID.e2b.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	f = s.makefile("rb")
	assert f.readline().startswith(b"HTTP/1.1 101"), "no 101"
	while f.readline() not in (b"\r\n", b""):
	    pass
	for i in range(20):
	    msg = b"ping-%d|" % i
	    s.sendall(msg)
	    got = b""
	    while len(got) < len(msg):
	        got += f.read1(len(msg) - len(got))
	    assert got == msg, (got, msg)
	s.shutdown(socket.SHUT_WR)
	assert f.read() == b""
	EOF
    timeout 120 python3 ws.py
'

test_expect_success 'a closed port: 502 with E2B'"'"'s JSON, by header and by host' '
    cp=$(free_port) &&
    test "$(curl -s -m 60 -o out -w "%{http_code}" -H "E2b-Sandbox-Id: $ID" -H "E2b-Sandbox-Port: $cp" "$URL/")" = 502 &&
    python3 -c "import json; d=json.load(open(\"out\")); assert d==dict(message=\"The sandbox is running but port is not open\", sandboxId=\"$ID\", port=$cp, code=502), d" &&
    test "$(curl -s -m 60 -o out -w "%{http_code}" -H "Host: $cp-$ID.e2b.local" "$URL/x")" = 502 &&
    test_grep "port is not open" out && alive
'

test_expect_success 'an unknown sandbox or a bad port: 502 / 400, and still serving' '
    test "$(curl -s -m 60 -o out -w "%{http_code}" -H "Host: $GP-aaaaaaaaaaaaaaaaaaaa.e2b.local" "$URL/")" = 502 &&
    python3 -c "import json; d=json.load(open(\"out\")); assert d[\"message\"]==\"The sandbox was not found\" and d[\"code\"]==502, d" &&
    test "$(curl -s -m 60 -o out -w "%{http_code}" -H "E2b-Sandbox-Id: $ID" -H "E2b-Sandbox-Port: 70000" "$URL/")" = 400 &&
    test_grep "70000" out && alive
'

test_expect_success 'many requests at once to the port' '
    for i in 1 2 3 4 5 6 7 8; do hdr -o "par$i.out" "$URL/big?n=3000000" & done && wait &&
    for i in 1 2 3 4 5 6 7 8; do test "$(wc -c <"par$i.out")" = 3000000 || return 1; done
'

test_expect_success 'a killed sandbox: its ports are gone (502)' '
    e2b sandbox kill "$ID" && sbx_gone "$ID" &&
    test "$(curl -s -m 60 -o out -w "%{http_code}" -H "E2b-Sandbox-Id: $ID" -H "E2b-Sandbox-Port: $GP" "$URL/")" = 502 &&
    alive
'

test_done
