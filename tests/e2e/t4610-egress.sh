#!/bin/sh
# Outbound rules from the command line (--allow-out, --deny-out, sandbox
# network), enforced in the sandbox's network namespace by nftables and the
# egress helper; the sandbox cannot change them; nothing of the helper is
# left when the sandbox ends. The far side is a network namespace of the
# test's own, a veth pair away (as t4000's internet test).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

st() { python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))" \
    "$E2B_RUNTIME_DIR/sandboxes/$1/state.json" "$2"; }
# "open" or why a connection from inside the sandbox failed
CONNECT="python3 -c \"import socket,sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); print(\\\"open\\\")
except OSError as e:
    print(e)\""
# the pids of processes in the sandbox's network namespace but not its pid namespace: its helpers
helpers() {
    local init=$(cat "$TRASH/.init-$1") p
    for p in /proc/[0-9]*; do
        [ "$(readlink $p/ns/net 2>/dev/null)" = "$(cat "$TRASH/.netns-$1")" ] &&
            [ "$(readlink $p/ns/pid 2>/dev/null)" = "$(readlink /proc/self/ns/pid)" ] && echo "${p#/proc/}"
    done
    return 0
}
remember() { init=$(st "$1" initPid) && echo "$init" > "$TRASH/.init-$1" && readlink /proc/$init/ns/net > "$TRASH/.netns-$1"; }

NS=e2b-t4610-$$
N=10.252.$(( $$ % 250 ))
if test_have_prereq ROOT && netns_new "$NS"; then
    test_atexit "ip link del e2bq$$a"
    ip link add "e2bq$$a" type veth peer name "e2bq$$b" && ip link set "e2bq$$b" netns "$(netns_pid "$NS")" &&
        ip addr add $N.1/24 dev "e2bq$$a" && ip link set "e2bq$$a" up &&
        netns_exec "$NS" ip addr add $N.2/24 dev "e2bq$$b" && netns_exec "$NS" ip addr add $N.3/24 dev "e2bq$$b" &&
        netns_exec "$NS" ip link set "e2bq$$b" up && netns_exec "$NS" ip link set lo up ||
        echo "# cannot set up the test network"
fi

test_expect_success ROOT 'the far side answers' '
    port=$(free_port) && echo $port > port &&
    { nsenter -t "$(netns_pid "$NS")" -n -- python3 -m http.server --bind 0.0.0.0 "$port" > http.log 2>&1 & } &&
    echo $! > http.pid && test_atexit "kill $(cat http.pid)" &&
    wait_for 100 curl -sf -o /dev/null "http://$N.2:$port/" && curl -sf -o /dev/null "http://$N.3:$port/"
'

test_expect_success ROOT '--deny-out ALL_TRAFFIC --allow-out HOST: that host only, in the kernel' '
    port=$(cat port) &&
    sbx_create host --deny-out ALL_TRAFFIC --allow-out $N.2 && id=$SBX && remember $id &&
    e2b sandbox exec "$id" "$CONNECT $N.2 $port" > r && test "$(cat r)" = open &&
    e2b sandbox exec "$id" "$CONNECT $N.3 $port" > r && test_grep "No route to host" r &&
    e2b sandbox exec "$id" "$CONNECT 10.0.2.2 $port" > r && test_grep -v open r &&
    nsenter -t "$(st $id initPid)" -n nft list table inet e2b_egress > rules &&
    test_grep "elements = { $N.2 }" rules && test_grep "::/0" rules &&
    e2b sandbox info --json "$id" > info && test_grep "\"ALL_TRAFFIC\"" info
'

test_expect_success ROOT 'the sandbox cannot change its rules (no CAP_NET_ADMIN), nor reach the helper'"'"'s control socket' '
    id=$(e2b sandbox list --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"sandboxID\"])") &&
    test_expect_code 1 e2b sandbox exec "$id" "nft flush ruleset" 2> err &&
    test_expect_code 1 e2b sandbox exec "$id" "nft list ruleset" 2> err &&
    test_expect_code 2 e2b sandbox exec "$id" "ls $E2B_RUNTIME_DIR/sandboxes/$id/egress.sock" &&
    e2b sandbox exec "$id" "$CONNECT $N.3 $(cat port)" > r && test_grep -v open r
'

test_expect_success ROOT 'sandbox network: live, and cleared with no rule' '
    port=$(cat port) && id=$(e2b sandbox list --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"sandboxID\"])") &&
    e2b sandbox network "$id" --deny-out $N.2 &&
    e2b sandbox exec "$id" "$CONNECT $N.2 $port" > r && test_grep -v open r &&
    e2b sandbox exec "$id" "$CONNECT $N.3 $port" > r && test "$(cat r)" = open &&
    e2b sandbox network "$id" --no-internet --allow-out $N.3/32:$port &&
    e2b sandbox exec "$id" "$CONNECT $N.3 $port" > r && test "$(cat r)" = open &&
    e2b sandbox exec "$id" "$CONNECT $N.2 $port" > r && test_grep -v open r &&
    e2b sandbox network "$id" &&
    e2b sandbox exec "$id" "$CONNECT $N.2 $port" > r && test "$(cat r)" = open &&
    test_expect_code 1 e2b sandbox network "$id" --deny-out example.com 2> err && test_grep "domain" err
'

test_expect_success ROOT 'the helper ends with the sandbox; nothing is left' '
    id=$(e2b sandbox list --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"sandboxID\"])") &&
    test -n "$(helpers $id)" && e2b sandbox kill "$id" && sbx_wait_gone "$id" &&
    wait_for 100 sh -c "! ps -o pid= -p \"$(helpers $id | tr "\n" " ")\" >/dev/null 2>&1"
'

test_expect_success ROOT 'a sandbox with no network has no rules to change' '
    sbx_create host && id=$SBX &&
    test_expect_code 1 e2b sandbox network "$id" --allow-out 1.1.1.1 2> err && test_grep "without internet access" err
'

test_expect_success ROOT 'a sandbox with a network trusts the egress CA (its key stays out); a template'"'"'s bundle gets it, a symlinked one is left alone' '
    ca=$E2B_DATA_DIR/egress && mkdir -p t1/root/bin t1/root/etc/ssl/certs t1/root/usr/local/share/ca-certificates t2/root/bin t2/root/etc/ssl/certs &&
    cp "$(command -v busybox)" t1/root/bin/ && ln -s busybox t1/root/bin/sh && cp -a t1/root/bin t2/root/ &&
    printf "root:x:0:0:root:/root:/bin/sh\n" > t1/root/etc/passwd && printf "root:x:0:\n" > t1/root/etc/group &&
    cp t1/root/etc/passwd t1/root/etc/group t2/root/etc/ &&
    printf "FIRST\n" > t1/root/etc/ssl/certs/ca-certificates.crt && ln -s /etc/shadow t2/root/etc/ssl/certs/ca-certificates.crt &&
    printf "FROM scratch\nCOPY root/ /\n" > t1/e2b.Dockerfile && cp t1/e2b.Dockerfile t2/ &&
    e2b template build -q -n cabundle -p t1 --runtime ns > /dev/null && e2b template build -q -n calink -p t2 --runtime ns > /dev/null &&
    sbx_create cabundle --internet && a=$SBX &&
    test "$(stat -c %a "$ca/ca.key")" = 600 && test "$(stat -c %a "$ca")" = 700 &&
    e2b sandbox exec "$a" "head -1 /etc/ssl/certs/ca-certificates.crt; grep -c \"BEGIN CERT\" /etc/ssl/certs/ca-certificates.crt; cmp /run/e2b/egress-ca.pem /usr/local/share/ca-certificates/e2b-egress-ca.crt && echo \$NODE_EXTRA_CA_CERTS" > out &&
    printf "FIRST\n1\n/run/e2b/egress-ca.pem\n" > want && test_cmp want out &&
    e2b sandbox exec "$a" "cat /run/e2b/egress-ca.pem" > in.pem && test_cmp "$ca/ca.pem" in.pem &&
    ! e2b sandbox exec -u root "$a" "grep -rl \"PRIVATE KEY\" / --exclude-dir=proc --exclude-dir=sys 2>/dev/null" &&
    sbx_create calink --internet && b=$SBX &&
    test "$(e2b sandbox exec -u root "$b" "readlink /etc/ssl/certs/ca-certificates.crt; cat /etc/ssl/certs/ca-certificates.crt 2>&1 | grep -c root: ; true")" = "/etc/shadow
0" &&
    sbx_create cabundle && c=$SBX &&
    test "$(e2b sandbox exec "$c" "cat /etc/ssl/certs/ca-certificates.crt; ls /run/e2b")" = "FIRST
envd" &&
    e2b sandbox kill "$a" "$b" "$c"
'

test_expect_success 'bad rules are usage errors or refused before anything starts' '
    test_expect_code 1 e2b sandbox create -d host --deny-out example.com 2> err && test_grep "domain" err &&
    test_expect_code 1 e2b sandbox create -d host --allow-out 1.2.3.4:0 2> err && test_grep "port" err
'

test_done
