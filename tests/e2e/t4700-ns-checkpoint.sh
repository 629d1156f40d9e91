#!/bin/sh
# The ns runtime's checkpoints through CRIU: a snapshot of a running
# sandbox (its process tree with memory, its writable layer) that runs on,
# two sandboxes restored from it at once that go on from its memory, pause
# --to-disk and resume across what a reboot clears, an overlay template's
# layer with a whiteout, and the failures: a truncated or corrupt
# checkpoint, a tree CRIU cannot save, no usable criu; --internet. Unprivileged
# sandboxes are refused in t4300.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

# A CRIU that can checkpoint here (tools/criu.sh installs one).
test_lazy_prereq CRIU 'criu check >/dev/null 2>&1 && criu --version | grep -Eq "Version: ([4-9]\.([2-9]|[1-9][0-9])|[5-9]\.)"'

# The counter: a Python process whose value lives in its memory. Each
# "tick" written to the FIFO /tmp/ctl adds one and writes the value to
# /tmp/count, so after a restore only the restored memory knows where it is.
cat > "$TRASH/counter.py" <<'EOF'
import os
n = 0
while True:
    with open('/tmp/ctl') as f:
        for line in f:
            if line.strip() == 'tick':
                n += 1
                with open('/tmp/count.new', 'w') as out:
                    out.write(str(n))
                os.replace('/tmp/count.new', '/tmp/count')
EOF
count() { e2b sandbox exec "$1" 'cat /tmp/count 2>/dev/null || echo none'; }
tick() { # sandbox expected-value
    e2b sandbox exec "$1" 'echo tick > /tmp/ctl' && wait_for 100 test "$(count "$1")" = "$2"
}
state() { python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))" \
    "$E2B_RUNTIME_DIR/sandboxes/$1/state.json" "$2"; }
# The store's directory of a snapshot.
snap_dir() {
    for d in "$E2B_DATA_DIR"/snapshots/*/; do
        grep -q "\"snapshotID\": \"$1\"" "$d/snapshot.json" 2>/dev/null && { echo "$d"; return 0; }
    done
    return 1
}

# The sandbox a failed create named in its error, and that nothing is left of it.
failed_gone() {
    id=$(sed -n "s/.*cannot restore sandbox .\([a-z0-9]\{20\}\).*/\1/p" "$1" | head -n 1) &&
    test -n "$id" && sbx_wait_gone "$id" && ! e2b sandbox info "$id" 2>/dev/null
}
envd_status() { # sandbox token: the HTTP status envd gives a process list with that token
    curl -s -o /dev/null -w "%{http_code}" --unix-socket "$E2B_RUNTIME_DIR/sandboxes/$1/envd.sock" \
        -H "Content-Type: application/json" -H "X-Access-Token: $2" -d "{}" \
        http://localhost/process.Process/List
}

test_expect_success ROOT,CRIU 'a sandbox with a counter in a process'"'"'s memory and a file in /tmp' '
    sbx_create host --secure --timeout 600 && A=$SBX &&
    e2b sandbox files write "$A" /tmp/counter.py < "$TRASH/counter.py" &&
    e2b sandbox exec "$A" "echo kept > /tmp/note; mkfifo /tmp/ctl; (python3 /tmp/counter.py </dev/null >/tmp/counter.log 2>&1 &)" &&
    tick "$A" 1 && tick "$A" 2 && tick "$A" 3 &&
    echo "$A" > a.id && state "$A" envdAccessToken > a.token
'
A=$(cat a.id 2>/dev/null)

test_expect_success ROOT,CRIU 'a snapshot: the sandbox runs on with its id and end, the counter where it was' '
    end=$(state "$A" deadlineBootMs) &&
    e2b sandbox snapshot create "$A" > snap.id && SNAP=$(cat snap.id) && test -n "$SNAP" &&
    test "$(state "$A" deadlineBootMs)" = "$end" && test "$(state "$A" state)" = running &&
    tick "$A" 4
'
SNAP=$(cat snap.id 2>/dev/null)

test_expect_success ROOT,CRIU 'two sandboxes restored from it at once go on from its memory, each on its own' '
    { e2b sandbox create -d --secure "$SNAP" > b.id 2>b.err & } && pb=$! &&
    { e2b sandbox create -d "$SNAP" > c.id 2>c.err & } && pc=$! &&
    wait $pb && wait $pc && B=$(cat b.id) && C=$(cat c.id) &&
    test_atexit "e2b sandbox kill $B; e2b sandbox kill $C" &&
    test "$B" != "$C" && test "$B" != "$A" &&
    test "$(count "$B")" = 3 && test "$(count "$C")" = 3 &&
    tick "$B" 4 && tick "$B" 5 && tick "$C" 4 && tick "$A" 5 &&
    test "$(count "$A")" = 5 && test "$(count "$B")" = 5 && test "$(count "$C")" = 4 &&
    test "$(e2b sandbox exec "$B" cat /tmp/note)" = kept &&
    test "$(e2b sandbox exec "$C" cat /tmp/note)" = kept
'
B=$(cat b.id 2>/dev/null) C=$(cat c.id 2>/dev/null)

test_expect_success ROOT,CRIU 'each copy is a new sandbox: its id, its own pids, its token or none, never the old one' '
    test "$(e2b sandbox exec "$B" "echo \$E2B_SANDBOX_ID")" = "$B" &&
    e2b sandbox exec "$B" "grep SANDBOX_ID= /.e2b" > marker && test_grep "SANDBOX_ID=$B" marker &&
    test "$(state "$B" initPid)" != "$(state "$C" initPid)" &&
    kill -0 "$(state "$B" initPid)" && kill -0 "$(state "$C" initPid)" &&
    test "$(e2b sandbox exec "$B" "pgrep -xf \"python3 /tmp/counter.py\"")" = "$(e2b sandbox exec "$C" "pgrep -xf \"python3 /tmp/counter.py\"")" &&
    tb=$(state "$B" envdAccessToken) && test -n "$tb" && test "$tb" != "$(cat a.token)" &&
    test "$(envd_status "$B" "$tb")" = 200 &&
    test "$(envd_status "$B" "$(cat a.token)")" = 401 &&
    test "$(envd_status "$A" "$(cat a.token)")" = 200 &&
    test "$(state "$C" envdAccessToken)" = None && test "$(envd_status "$C" "")" = 200
'

test_expect_success ROOT,CRIU 'a snapshot ends the streams clients have open to envd; their commands run on' '
    { e2b sandbox exec "$B" "for i in \$(seq 300); do echo \$i; sleep 0.1; done" > stream.out 2>&1 & } &&
    wait_for 100 test -s stream.out &&
    e2b sandbox snapshot create "$B" > snap2.id &&
    wait_for 100 test_grep "cannot reach" stream.out &&
    e2b sandbox exec "$B" "pgrep -f \"seq 300\"" &&
    tick "$B" 6
'

test_expect_success ROOT,CRIU 'pause --to-disk: its processes end and its memory is freed; resume after what a reboot clears' '
    e2b sandbox kill "$B" && e2b sandbox kill "$C" && sbx_wait_gone "$B" && sbx_wait_gone "$C" &&
    e2b sandbox pause --to-disk "$A" &&
    sbx_wait_gone "$A" &&
    test -f "$E2B_DATA_DIR/sandboxes/$A/snapshot.json" &&
    e2b sandbox list --state paused > paused && test_grep "$A" paused &&
    test_expect_code 125 e2b sandbox exec "$A" true 2>exec.err && test_grep "paused" exec.err &&
    rm -rf "$E2B_RUNTIME_DIR" &&
    e2b sandbox resume "$A" &&
    test "$(e2b sandbox info "$A" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"state\"])")" = running &&
    test "$(count "$A")" = 5 && tick "$A" 6 &&
    test "$(e2b sandbox exec "$A" cat /tmp/note)" = kept &&
    test "$(envd_status "$A" "$(cat a.token)")" = 200 &&
    test ! -e "$E2B_DATA_DIR/sandboxes/$A"
'

# A tree template (an overlay over the template): the layer with a file
# deleted from the template (a whiteout) and one made, a process running.
test_expect_success ROOT,CRIU,BUSYBOX 'an overlay template: snapshot and restore keep the layer, whiteouts too' '
    mkdir -p bb/root/bin bb/root/etc bb/root/tmp && cp /usr/bin/busybox bb/root/bin/ &&
    for a in sh sleep cat rm pgrep; do ln -sf busybox bb/root/bin/$a || return 1; done &&
    printf "root:x:0:0:root:/root:/bin/sh\n" > bb/root/etc/passwd &&
    printf "root:x:0:\n" > bb/root/etc/group && echo template > bb/root/etc/gone &&
    printf "FROM scratch\nCOPY root/ /\n" > bb/e2b.Dockerfile &&
    e2b template build -q -n ckpt-bb -p bb > /dev/null 2>bb.err &&
    sbx_create ckpt-bb && D=$SBX &&
    e2b sandbox exec -u root "$D" "rm /etc/gone; echo made > /tmp/made; (sleep 1000 </dev/null >/dev/null 2>&1 &)" &&
    e2b sandbox snapshot create "$D" > snap3.id &&
    sbx_create "$(cat snap3.id)" && E=$SBX &&
    test "$(e2b sandbox exec "$E" cat /tmp/made)" = made &&
    test_must_fail e2b sandbox exec "$E" "cat /etc/gone" &&
    for p in $(sbx_pids "$E"); do cat /proc/$p/comm; done > comms && grep -qx sleep comms
'

test_expect_success ROOT,CRIU 'with --internet: the copy gets a slirp4netns of its own, which goes with it' '
    sbx_create host --internet && G=$SBX &&
    e2b sandbox snapshot create "$G" > snap4.id &&
    sbx_create "$(cat snap4.id)" && H=$SBX &&
    e2b sandbox exec "$H" "cat /proc/net/route" > route && test_grep "^tap0" route &&
    e2b sandbox exec "$G" "cat /proc/net/route" > route && test_grep "^tap0" route &&
    sup=$(state "$H" supervisorPid) && pgrep -f "slirp4netns .*--netns-type=path /proc/$sup/fd/" &&
    e2b sandbox kill "$H" && sbx_wait_gone "$H" &&
    wait_for 100 sh -c "! pgrep -f \"[s]lirp4netns .*/proc/$sup/fd/\""
'

test_expect_success ROOT,CRIU 'a truncated checkpoint: a clear error, and nothing is left of the create' '
    dir=$(snap_dir "$SNAP") &&
    cp -a "$dir" "$TRASH/snap-copy" &&
    img=$(ls -S "$dir"save/criu/pages-*.img | head -n 1) && size=$(stat -c %s "$img") &&
    truncate -s $((size / 2)) "$img" &&
    test_must_fail e2b sandbox create -d "$SNAP" > bad.id 2>bad.err && cat bad.err &&
    test_grep "damaged" bad.err && test_grep "pages-.*bytes" bad.err &&
    failed_gone bad.err
'

test_expect_success ROOT,CRIU 'a corrupt checkpoint CRIU cannot restore: its reason, and nothing is left' '
    dir=$(snap_dir "$SNAP") &&
    rm -rf "$dir" && cp -a "$TRASH/snap-copy" "${dir%/}" &&
    img="$dir"save/criu/core-1.img && size=$(stat -c %s "$img") &&
    head -c "$size" /dev/zero > "$img" &&
    test_must_fail e2b sandbox create -d "$SNAP" 2>bad.err && cat bad.err &&
    test_grep "CRIU cannot restore the sandbox: " bad.err &&
    failed_gone bad.err
'

test_expect_success ROOT,CRIU 'a tree CRIU cannot save: its reason, no snapshot, and the sandbox runs on' '
    e2b sandbox exec -b "$A" "python3 -c \"import os, time
f = open(\\\"/tmp/big\\\", \\\"w\\\"); f.write(\\\"x\\\" * (20 << 20)); f.flush(); os.unlink(\\\"/tmp/big\\\"); time.sleep(1000)\"" &&
    wait_for 100 e2b sandbox exec "$A" "ls -l /proc/*/fd 2>/dev/null | grep -q \"big (deleted)\"" &&
    e2b sandbox snapshot list -q > list.before &&
    test_must_fail e2b sandbox snapshot create "$A" 2>why.err && cat why.err &&
    test_grep "CRIU cannot checkpoint the sandbox: .*ghost file /tmp/big" why.err &&
    test_grep "deleted file larger than" why.err &&
    e2b sandbox snapshot list -q > list.after && test_cmp list.before list.after &&
    tick "$A" 7
'

test_expect_success ROOT,CRIU 'a template built on host with an /etc of its own: refused at the snapshot, not at a restore' '
    mkdir hl && echo x > hl/x && printf "FROM e2b-template:host\nCOPY x /etc/x\n" > hl/e2b.Dockerfile &&
    e2b template build -q -n ckpt-hostlayer -p hl > /dev/null 2>hl.err &&
    sbx_create ckpt-hostlayer && L=$SBX &&
    test_must_fail e2b sandbox snapshot create "$L" 2>hl.snap.err &&
    test_grep "built on host with an /etc of its own" hl.snap.err &&
    e2b sandbox exec "$L" "cat /etc/x"
'

test_expect_success ROOT 'without a criu that works, a snapshot says so and the sandbox runs on' '
    sbx_create host && F=$SBX &&
    E2B_CRIU=/nonexistent/criu test_must_fail e2b sandbox snapshot create "$F" 2>nocriu.err &&
    cat nocriu.err && test_grep "checkpoints need CRIU" nocriu.err &&
    E2B_CRIU=/nonexistent/criu test_must_fail e2b sandbox pause --to-disk "$F" 2>nocriu2.err &&
    test_grep "checkpoints need CRIU" nocriu2.err &&
    e2b sandbox exec "$F" true
'

test_done
