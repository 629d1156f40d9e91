#!/bin/sh
# Snapshots and forks of running VM sandboxes: the CLI locally and through
# e2b serve, the REST API's codes and messages as E2B's (a paused, killed or
# unknown sandbox, fork counts out of range, bad bodies and names, a
# snapshot that sandboxes paused to disk need, a snapshot cut short on
# disk), pagination, the copy-on-write disk of a restored sandbox, what a
# runtime without snapshots says, and nothing left behind. Few VMs (TCG):
# one original, its copies restored from snapshots.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

export E2B_VM_ACCEL=${E2B_VM_ACCEL:-tcg}
command -v qemu-system-x86_64 >/dev/null || { echo "1..0 # SKIP no qemu-system-x86_64"; exit 0; }
command -v busybox >/dev/null || { echo "1..0 # SKIP no busybox"; exit 0; }
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "1..0 # SKIP no guest kernel in /boot"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP template builds need root"; exit 0; }

# The template: static busybox, saved as a VM by its build.
mkdir -p bb/root/bin bb/root/etc bb/root/tmp && cp "$(command -v busybox)" bb/root/bin/ &&
for a in $(bb/root/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "bb/root/bin/$a"; done &&
printf "root:x:0:0:root:/root:/bin/sh\n" > bb/root/etc/passwd && printf "root:x:0:\n" > bb/root/etc/group &&
printf "FROM scratch\nCOPY root/ /\n" > bb/e2b.Dockerfile &&
e2b template build -q -n snapbb -p bb --runtime vm > tid 2>build.err ||
    { echo "Bail out! cannot build the template: $(cat build.err)"; exit 1; }

KEY=$(e2b key create -q --name tests) || { echo "Bail out! cannot create a key"; exit 1; }
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
e2b serve --listen 127.0.0.1:$PORT --deny-internet > serve.log 2>&1 &
echo $! > serve.pid
test_atexit "kill \$(cat $TRASH/serve.pid)"
wait_for 50 curl -sf -o /dev/null "$URL/health" || { echo "Bail out! serve did not start"; exit 1; }
test_atexit "e2b --api-url '' sandbox kill --all"

api() { # method path [body] -> status; body in $TRASH/out, headers in $TRASH/hdr
    curl -s -D "$TRASH/hdr" -o "$TRASH/out" -w '%{http_code}' -X "$1" -H "X-API-Key: $KEY" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$URL$2"
}
field() { # python expression on the JSON answer d: strings as they are, the rest as JSON
    python3 -c "import json,sys; d=json.load(open('$TRASH/out')); v=eval(sys.argv[1]); print(v if isinstance(v, str) else json.dumps(v))" "$1"
}
# E2B's error body: {code, message}, code the status
error_is() { # status message-part
    test "$(field "d[\"code\"]")" = "$1" && test_grep "$2" out
}
remote() { e2b --api-url "$URL" --api-key "$KEY" "$@"; }
snapdir() { # the store's directory of a snapshot ID
    python3 - "$E2B_DATA_DIR/snapshots" "$1" <<-\EOF
	import json, os, sys
	for k in os.listdir(sys.argv[1]):
	    p = os.path.join(sys.argv[1], k, "snapshot.json")
	    if os.path.exists(p) and json.load(open(p))["snapshotID"] == sys.argv[2]:
	        print(os.path.join(sys.argv[1], k))
	EOF
}

test_expect_success 'setup: a running VM with files and a process' '
    sbx_create snapbb --timeout 600 --secure -m role=original && echo "$SBX" > orig &&
    e2b sandbox exec "$SBX" "echo one > /tmp/one; (while :; do sleep 1; done) >/dev/null 2>&1 &"
'
ORIG=$(cat orig 2>/dev/null)
[ -n "$ORIG" ] || { echo "Bail out! no VM sandbox"; exit 1; }

test_expect_success 'CLI: a snapshot of a running VM; it runs on with its id and end, and a create from it has the files' '
    st=$E2B_RUNTIME_DIR/sandboxes/$ORIG/state.json && deadline=$(grep deadlineBootMs "$st") &&
    snap=$(e2b sandbox snapshot create "$ORIG") && echo "$snap" > snap1 &&
    case $snap in ????????????????????:default) ;; *) false ;; esac &&
    test "$(grep deadlineBootMs "$st")" = "$deadline" && test_grep "\"state\": \"running\"" "$st" &&
    test "$(e2b sandbox exec "$ORIG" "cat /tmp/one")" = one &&
    e2b sandbox snapshot list --json > list.json &&
    python3 -c "import json,sys; l=json.load(open(\"list.json\")); assert [s[\"snapshotID\"] for s in l]==[sys.argv[1]] and l[0][\"sandboxID\"]==sys.argv[2], l" "$snap" "$ORIG" &&
    sbx_create "$snap" --timeout 300 && copy=$SBX && test "$copy" != "$ORIG" &&
    test "$(e2b sandbox exec "$copy" "cat /tmp/one; echo \$E2B_SANDBOX_ID")" = "one
$copy" &&
    e2b sandbox logs "$copy" > log && test_grep "restored from $(snapdir "$snap")/save" log &&
    echo "$copy" > copy
'
COPY=$(cat copy 2>/dev/null)

test_expect_success 'the copy runs on a qcow2 overlay over the snapshot disk, which stays as it was' '
    d=$E2B_RUNTIME_DIR/sandboxes/$COPY && test -f "$d/disk.qcow2" && test ! -e "$d/disk.ext4" &&
    sd=$(snapdir "$(cat snap1)")/save && sum=$(cksum < "$sd/disk.ext4") &&
    python3 -c "import sys; h=open(sys.argv[1],\"rb\").read(4096); assert h[:4]==b\"QFI\xfb\" and sys.argv[2].encode() in h, h[:64]" "$d/disk.qcow2" "$sd/disk.ext4" &&
    e2b sandbox exec "$COPY" "head -c 3000000 /dev/urandom > /tmp/big; sync" &&
    test "$(cksum < "$sd/disk.ext4")" = "$sum" &&
    test "$(stat -c %b "$d/disk.qcow2")" -gt 4000 &&
    test_must_fail e2b sandbox exec "$ORIG" "test -e /tmp/big"
'

test_expect_success 'CLI: bad input is refused, named' '
    test_expect_code 2 e2b sandbox fork "$ORIG" -n 0 2>err && test_grep "between 1 and 100" err &&
    test_expect_code 2 e2b sandbox fork "$ORIG" -n 1000 2>err &&
    test_must_fail e2b sandbox snapshot create nosuchsandboxxxxxxxx 2>err && test_grep "not found" err &&
    test_must_fail e2b sandbox snapshot create --name "Not A Name" "$ORIG" 2>err && test_grep "is not one" err &&
    test_must_fail e2b sandbox snapshot create --name snapbb "$ORIG" 2>err && test_grep "is a template" err &&
    test_must_fail e2b sandbox snapshot rm nope:default 2>err && test_grep "snapshot .nope:default. not found" err &&
    test_must_fail e2b sandbox create -d "$(cat snap1)" --memory 256 2>err && test_grep "cannot be set" err
'

test_expect_success 'a sandbox its runtime cannot save (ns with no usable criu) fails the call saying so, copying nothing' '
    sbx_create host --runtime ns && h=$SBX &&
    E2B_CRIU=/nonexistent/criu test_must_fail e2b sandbox snapshot create "$h" 2>err &&
    test_grep "checkpoints need CRIU" err &&
    E2B_CRIU=/nonexistent/criu test_must_fail e2b sandbox fork "$h" 2>err && test_grep "checkpoints need CRIU" err &&
    test "$(e2b sandbox snapshot list --json)" = "$(e2b sandbox snapshot list --json --sandbox "$ORIG")" &&
    e2b sandbox exec "$h" true &&
    e2b sandbox kill "$h"
'

test_expect_success 'API: snapshot create, list with filters and pages, E2B shapes' '
    test "$(api POST /sandboxes/$ORIG/snapshots "{\"name\":\"api-snap\"}")" = 201 &&
    test "$(field "d[\"snapshotID\"]")" = api-snap:default && test "$(field "d[\"names\"]")" = "[\"api-snap\"]" &&
    test "$(api POST /sandboxes/$ORIG/snapshots)" = 201 && third=$(field "d[\"snapshotID\"]") &&
    test "$(api GET "/snapshots?limit=2")" = 200 && test "$(field "len(d)")" = 2 &&
    test "$(field "d[0][\"snapshotID\"]")" = "$third" && grep -i "^X-Next-Token: 2" hdr &&
    test "$(api GET "/snapshots?limit=2&nextToken=2")" = 200 && test "$(field "[s[\"snapshotID\"] for s in d]")" = "[\"$(cat snap1)\"]" &&
    ! grep -i "^X-Next-Token" hdr &&
    test "$(api GET "/snapshots?name=api-snap")" = 200 && test "$(field "[s[\"snapshotID\"] for s in d]")" = "[\"api-snap:default\"]" &&
    test "$(api GET "/snapshots?sandboxID=$COPY")" = 200 && test "$(field "len(d)")" = 0 &&
    test "$(api GET "/snapshots?limit=0")" = 400 && test "$(api GET "/snapshots?nextToken=x")" = 400 &&
    test "$(api DELETE "/templates/$third")" = 204 &&
    test "$(api DELETE "/templates/$third")" = 404 && error_is 404 "not found"
'

test_expect_success 'API: bad bodies, counts and states are E2B codes with messages' '
    test "$(api POST /sandboxes/nosuchsandboxxxxxxxx/snapshots "{}")" = 404 && error_is 404 "not found" &&
    test "$(api POST /sandboxes/$ORIG/snapshots "{\"name\":5}")" = 400 && error_is 400 "name must be" &&
    test "$(api POST /sandboxes/$ORIG/snapshots "[")" = 400 &&
    test "$(api POST /sandboxes/$ORIG/snapshots "{\"name\":\"team/x\"}")" = 400 && error_is 400 "namespace" &&
    test "$(api POST /sandboxes/$ORIG/fork "{\"count\":0}")" = 400 && error_is 400 "Count must be at least 1" &&
    test "$(api POST /sandboxes/$ORIG/fork "{\"count\":1000}")" = 400 && error_is 400 "Count cannot be greater than 100" &&
    test "$(api POST /sandboxes/$ORIG/fork "{\"count\":\"2\"}")" = 400 &&
    test "$(api POST /sandboxes/$ORIG/fork "{\"timeout\":0}")" = 400 &&
    test "$(api POST /sandboxes/nosuchsandboxxxxxxxx/fork "{}")" = 404 &&
    test "$(api GET /sandboxes/$ORIG/fork)" = 405 &&
    test "$(api DELETE /snapshots)" = 405
'

test_expect_success 'remote CLI: fork -n 2 through serve; two copies of their own, the fork snapshot unlisted' '
    remote sandbox fork "$ORIG" -n 2 --timeout 120 > forks && test "$(wc -l < forks)" = 2 &&
    for f in $(cat forks); do
        test "$f" != "$ORIG" && test "$(remote sandbox exec "$f" "cat /tmp/one")" = one || return 1
    done &&
    remote sandbox snapshot list --json > rl.json &&
    python3 -c "import json; l=json.load(open(\"rl.json\")); assert sorted(s[\"snapshotID\"] for s in l)==sorted([\"api-snap:default\", open(\"snap1\").read().strip()]), l" &&
    remote sandbox snapshot create --name remote-snap "$(head -n 1 forks)" > rs && test "$(cat rs)" = remote-snap:default &&
    remote sandbox snapshot rm remote-snap &&
    test_must_fail remote sandbox snapshot rm remote-snap 2>err && test_grep "404" err &&
    for f in $(cat forks); do remote sandbox kill "$f" || return 1; done
'

test_expect_success 'a snapshot a sandbox paused to disk needs is not deleted (400, who holds it); once it is gone, it is' '
    test "$(api POST /v2/sandboxes "{\"templateID\":\"api-snap:default\",\"timeout\":300}")" = 201 &&
    held=$(field "d[\"sandboxID\"]") && test "$(field "d[\"alias\"]")" = api-snap &&
    test "$(api POST /sandboxes/$held/pause)" = 204 &&
    test "$(api POST /sandboxes/$held/snapshots "{}")" = 409 && error_is 409 "while it is paused" &&
    test "$(api POST /sandboxes/$held/fork "{\"count\":2}")" = 409 &&
    test "$(api DELETE /templates/api-snap:default)" = 400 &&
    error_is 400 "cannot delete snapshot .api-snap:default. because there are paused sandboxes" && test_grep "$held" out &&
    test_must_fail e2b sandbox snapshot rm api-snap 2>err && test_grep "$held" err &&
    test "$(api DELETE /sandboxes/$held)" = 204 &&
    test "$(api DELETE /templates/api-snap:default)" = 204
'

test_expect_success 'a snapshot cut short on disk: a create fails with 500 naming the file, and leaves nothing' '
    snap=$(e2b sandbox snapshot create --name cut "$ORIG") && d=$(snapdir "$snap")/save &&
    size=$(stat -c %s "$d/vmstate") && truncate -s $((size / 2)) "$d/vmstate" &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"cut\"}")" = 500 &&
    error_is 500 "damaged: vmstate is $((size / 2)) bytes, $size when it was saved" &&
    test_must_fail e2b sandbox create -d cut 2>err && test_grep "vmstate is" err &&
    test "$(e2b sandbox list --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")" = 2 &&
    e2b sandbox snapshot rm cut
'

test_expect_success 'serve --warm of a VM template: the warm VM (its snapshot restored) is handed out with the envs and token of the create' '
    P2=$(free_port) &&
    { e2b serve --listen 127.0.0.1:$P2 --deny-internet --warm snapbb=1 > warm.log 2>&1 & } &&
    echo $! > warm.pid && test_when_finished "kill \$(cat warm.pid)" &&
    wait_for 300 sh -c "e2b sandbox list --json | grep -q warmPool" &&
    w=$(e2b sandbox list --json | python3 -c "import json,sys; print([s[\"sandboxID\"] for s in json.load(sys.stdin) if s.get(\"warmPool\")][0])") &&
    test "$(curl -s -o out -w "%{http_code}" -H "X-API-Key: $KEY" -H "Content-Type: application/json" \
        -d "{\"templateID\":\"snapbb\",\"envVars\":{\"WHO\":\"warm\"}}" http://127.0.0.1:$P2/v2/sandboxes)" = 201 &&
    test "$(field "d[\"sandboxID\"]")" = "$w" && tok=$(field "d[\"envdAccessToken\"]") &&
    test "$(field "d[\"runtime\"]")" = vm &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -H "E2b-Sandbox-Id: $w" http://127.0.0.1:$P2/envs)" = 401 &&
    curl -sf -H "E2b-Sandbox-Id: $w" -H "X-Access-Token: $tok" http://127.0.0.1:$P2/envs > env.json &&
    python3 -c "import json,sys; e=json.load(open(\"env.json\")); assert e[\"WHO\"]==\"warm\" and e[\"E2B_SANDBOX_ID\"]==sys.argv[1], e" "$w" &&
    test "$(e2b sandbox exec "$w" "echo \$WHO; grep SANDBOX_ID /.e2b")" = "warm
SANDBOX_ID=$w" &&
    e2b sandbox kill "$w"
'

test_expect_success 'a killed sandbox: 404 for snapshot and fork; killing everything and deleting the snapshots leaves nothing' '
    e2b sandbox kill "$ORIG" &&
    test "$(api POST /sandboxes/$ORIG/snapshots "{}")" = 404 && error_is 404 "it ended: killed" &&
    test "$(api POST /sandboxes/$ORIG/fork "{}")" = 404 &&
    e2b sandbox kill --all -q &&
    for s in $(e2b sandbox snapshot list --json | python3 -c "import json,sys; print(\" \".join(s[\"snapshotID\"] for s in json.load(sys.stdin)))"); do
        e2b sandbox snapshot rm "$s" || return 1
    done &&
    test "$(e2b sandbox snapshot list --json)" = "[]" &&
    { test -z "$(ls "$E2B_DATA_DIR/snapshots")" || { ls -la "$E2B_DATA_DIR"/snapshots/*; false; }; } &&
    ! pgrep -f "$E2B_RUNTIME_DIR/sandboxes" > /dev/null
'

test_done
