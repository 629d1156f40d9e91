# lib-envd.sh - helpers for envd end-to-end tests; source after test-lib.sh.
#
#   envd_own_home               the next envd_start runs envd seeing root's home as
#                               $TRASH/root-home (login shells skip the machine's /root)
#   envd_start [envd options]   start $ENVD_BIN on a free 127.0.0.1 port ($ENVD_URL)
#   envd_alive                  /health answers 204 and the process lives
#   rpc PROC JSON [curl args]   unary Connect call; status on stdout, body in $TRASH/out
#   srpc PROC JSON [curl args]  server-stream call; status on stdout, frames decoded
#                               one JSON per line into $TRASH/out (end frame as "END <json>")
#   frame JSON [FLAGS]          print one Connect envelope

# Login shells envd runs as root (bash -l, the SDK's way) source /root's
# dotfiles: whatever the machine has there (a pyenv rehash waiting up to 60 s
# on a lock a killed shell left behind) would decide the test. So envd gets
# its own mount namespace with a passwd whose root lives in $TRASH/root-home.
envd_own_home() {
    mkdir -p "$TRASH/root-home"
    awk -F: -v OFS=: -v h="$TRASH/root-home" '$1 == "root" { $6 = h } { print }' /etc/passwd >"$TRASH/passwd.envd"
    cat >"$TRASH/envd-own-home" <<EOF
#!/bin/sh
exec unshare -m sh -c 'mount --bind "\$0" /etc/passwd && exec "\$@"' "$TRASH/passwd.envd" "$ENVD_BIN" "\$@"
EOF
    chmod 755 "$TRASH/envd-own-home"
    ENVD_BIN=$TRASH/envd-own-home
}

envd_start() {
    ENVD_PORT=$(free_port)
    ENVD_URL=http://127.0.0.1:$ENVD_PORT
    mkdir -p "$TRASH/envd-cwd"
    (cd "$TRASH/envd-cwd" && exec "$ENVD_BIN" --listen "127.0.0.1:$ENVD_PORT" "$@") >"$TRASH/envd.log" 2>&1 &
    ENVD_PID=$!
    test_atexit "kill $ENVD_PID"
    wait_for 50 curl -sf -o /dev/null "$ENVD_URL/health"
}

envd_alive() {
    kill -0 "$ENVD_PID" 2>/dev/null || { echo "envd died:"; cat "$TRASH/envd.log"; return 1; }
    test "$(curl -s -o /dev/null -w '%{http_code}' "$ENVD_URL/health")" = 204
}

rpc() {
    local proc=$1 body=$2
    shift 2
    curl -s -o "$TRASH/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data-binary "$body" "$@" "$ENVD_URL/$proc"
}

frame() {
    python3 -c 'import sys,struct; b=sys.argv[1].encode(); f=int(sys.argv[2]) if len(sys.argv)>2 else 0
sys.stdout.buffer.write(bytes([f])+struct.pack(">I",len(b))+b)' "$@"
}

unframe() {
    python3 -c 'import sys,struct
d=sys.stdin.buffer.read()
while len(d)>=5:
    f=d[0]; n=struct.unpack(">I",d[1:5])[0]; p=d[5:5+n].decode(); d=d[5+n:]
    print(("END " if f&2 else "")+p)
if d: print("TRAILING", len(d))'
}

srpc() {
    local proc=$1 body=$2 st
    shift 2
    frame "$body" >"$TRASH/req.bin"
    st=$(curl -s -o "$TRASH/raw" -w '%{http_code}' -X POST -H 'Content-Type: application/connect+json' \
        --data-binary @"$TRASH/req.bin" "$@" "$ENVD_URL/$proc")
    unframe <"$TRASH/raw" >"$TRASH/out"
    echo "$st"
}

# expect_status GOT WANT: complain with the body when they differ.
expect_status() {
    [ "$1" = "$2" ] && return 0
    echo "status $1, want $2; body:"
    cat "$TRASH/out"
    echo
    return 1
}

# The Connect error code in $TRASH/out must be $1.
expect_code() {
    grep -q "\"code\":\"$1\"" "$TRASH/out" && return 0
    echo "want code $1, got:"
    cat "$TRASH/out"
    echo
    return 1
}

# sig PATH OP USER TOKEN [EXP]: a /files signature, URL-encoded for a query.
sig() {
    python3 -c 'import sys,hashlib,base64,urllib.parse
raw=":".join(sys.argv[1:])
s="v1_"+base64.b64encode(hashlib.sha256(raw.encode()).digest()).decode().rstrip("=")
print(urllib.parse.quote(s, safe=""))' "$@"
}
