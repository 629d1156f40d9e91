#!/bin/sh
# Local sandboxes: create, list, info, exec, pause/resume, timeouts, kill,
# and that an ended sandbox leaves nothing behind.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

st() { python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))" \
    "$E2B_RUNTIME_DIR/sandboxes/$1/state.json" "$2"; }

sbx_create host --timeout 900 -e GREETING=hello -m owner=tests -m team=e2b 2>"$TRASH/create.err" ||
    { echo "Bail out! cannot create a sandbox: $(cat "$TRASH/create.err")"; exit 1; }
ID=$SBX

test_expect_success 'a new sandbox has an E2B-shaped ID' '
    echo "$ID" | grep -Eq "^[a-z0-9]{20}$"
'

test_expect_success 'list shows it, filters by metadata and state' '
    e2b sandbox list > out && test_grep "$ID" out &&
    e2b sandbox list -m owner=tests --json > out.json && test_grep "\"sandboxID\": \"$ID\"" out.json &&
    e2b sandbox list -m owner=nobody > out && test_grep -v "$ID" out &&
    e2b sandbox list --state paused > out && test_grep -v "$ID" out
'

test_expect_success 'info in E2B'"'"'s schema' '
    e2b sandbox info "$ID" --json > info.json &&
    python3 - "$ID" <<-\EOF
	import json, sys
	d = json.load(open("info.json"))
	assert d["sandboxID"] == sys.argv[1] and d["templateID"] == "host" and d["state"] == "running", d
	assert d["metadata"] == {"owner": "tests", "team": "e2b"}, d
	for k in ("startedAt", "endAt", "cpuCount", "memoryMB", "envdVersion"):
	    assert k in d, k
	EOF
'

test_expect_success 'exec: output, exit status, stdin, env, cwd, user' '
    test "$(e2b sandbox exec "$ID" echo hi)" = hi &&
    test_expect_code 7 e2b sandbox exec "$ID" "exit 7" &&
    test "$(echo piped | e2b sandbox exec "$ID" cat)" = piped &&
    test "$(e2b sandbox exec "$ID" "echo \$GREETING \$E2B_SANDBOX")" = "hello true" &&
    test "$(e2b sandbox exec -e X=1 "$ID" "echo \$X")" = 1 &&
    test "$(e2b sandbox exec -c /tmp "$ID" pwd)" = /tmp &&
    test "$(e2b sandbox exec "$ID" -- printf "%s|" "a b" c)" = "a b|c|" &&
    e2b sandbox exec "$ID" "echo err >&2" 2>err >out && test_grep "^err$" err && ! test -s out
'

test_expect_success 'exec --timeout kills a command that runs too long' '
    test_expect_code 124 e2b sandbox exec --timeout 1 "$ID" "sleep 30" 2>err &&
    test_grep "timed out" err
'

test_expect_success 'exec into a missing sandbox fails with 125 and a clear message' '
    test_expect_code 125 e2b sandbox exec aaaaaaaaaaaaaaaaaaaa true 2>err &&
    test_grep "sandbox .aaaaaaaaaaaaaaaaaaaa. not found" err
'

test_expect_success 'files: upload and download a tree byte for byte, write, cat, mv, stat, rm' '
    mkdir -p tree/a/b && head -c 1000000 /dev/urandom > tree/a/b/blob && echo hi > tree/top.txt &&
    e2b sandbox files upload "$ID" tree /root/tree &&
    e2b sandbox files ls "$ID" /root/tree --depth 3 > ls.out && test_grep "/root/tree/a/b/blob" ls.out &&
    e2b sbx fs download "$ID" /root/tree back && diff -r tree back &&
    echo data | e2b sandbox files write "$ID" /tmp/w.txt &&
    test "$(e2b sandbox files cat "$ID" /tmp/w.txt)" = data &&
    e2b sandbox files mv "$ID" /tmp/w.txt /tmp/w2.txt &&
    e2b sandbox files stat "$ID" /tmp/w2.txt --json | grep -q "\"size\": \"5\"" &&
    e2b sandbox files rm "$ID" /tmp/w2.txt &&
    test_must_fail e2b sandbox files cat "$ID" /tmp/w2.txt 2>err && test_grep "No such file" err
'

test_expect_success 'output that cannot be written is an error: files cat, files download, exec into /dev/full' '
    echo data | e2b sandbox files write "$ID" /tmp/full.txt &&
    test_expect_code 1 e2b sandbox files cat "$ID" /tmp/full.txt >/dev/full 2>err &&
    test_grep "^e2b: cannot write to stdout: No space left on device" err &&
    test_expect_code 1 e2b sandbox files download "$ID" /tmp/full.txt /dev/full 2>err &&
    test_grep "^e2b: cannot write to ./dev/full.: No space left on device" err &&
    test -c /dev/full && test ! -e /dev/full.part &&
    ln -s /dev/full full-link && test_expect_code 1 e2b sandbox files download "$ID" /tmp/full.txt full-link 2>err &&
    test_grep "cannot write to .full-link.: No space left on device" err && test -L full-link &&
    test_expect_code 125 e2b sandbox exec "$ID" "echo hi" >/dev/full 2>err &&
    test_grep "^e2b: cannot write to stdout: No space left on device" err &&
    test_expect_code 125 e2b sandbox exec "$ID" "echo hi >&2" 2>/dev/full &&
    test_expect_code 125 e2b sandbox exec "$ID" "yes full-of-yes" >/dev/full 2>err &&
    test_grep "^e2b: cannot write to stdout" err &&
    wait_for 50 sh -c "! e2b sandbox process list $ID | grep -q full-of-yes" &&
    test_expect_code 1 timeout 60 e2b sandbox logs -f "$ID" >/dev/full 2>err &&
    test "$(grep -c "^e2b: cannot write to stdout: No space left on device" err)" = 1 &&
    test_expect_code 1 timeout 60 e2b sandbox metrics -f "$ID" >/dev/full 2>err &&
    test_grep "^e2b: cannot write to stdout" err
'

test_expect_success 'the sandbox is isolated: its own pid 1, hostname, /tmp' '
    test "$(e2b sandbox exec "$ID" "cat /proc/1/comm")" != systemd &&
    test "$(e2b sandbox exec "$ID" hostname)" = e2b &&
    touch "$TRASH/host-only" &&
    e2b sandbox exec "$ID" "test ! -e $TRASH/host-only" &&
    e2b sandbox exec "$ID" "test -f /.e2b"
'

test_expect_success 'host: each /home/<name> account gets a fresh home it owns; the host'"'"'s homes stay out' '
    u=e2bt4000$$ &&
    useradd -M -d /home/$u -s /bin/sh "$u" && test_when_finished "userdel $u" &&
    test ! -e /home/$u &&
    sbx_create host && h=$SBX &&
    test "$(e2b sandbox exec -u "$u" "$h" "echo \$HOME; cd && pwd && touch mine && stat -c %U mine")" = "/home/$u
/home/$u
$u" &&
    test ! -e /home/$u && e2b sandbox exec "$h" "ls /home" > homes && test_grep -v "^root$" homes &&
    e2b sandbox kill "$h"
'

test_expect_success 'background commands keep running' '
    pid=$(e2b sandbox exec --background "$ID" "sleep 60") &&
    e2b sandbox exec "$ID" "kill -0 $pid"
'

test_expect_success 'process list, attach (exit status passed through) and kill' '
    pid=$(e2b sandbox exec -b "$ID" "sleep 1; echo attached-output; exit 5") &&
    e2b sandbox process list "$ID" > ps.out && test_grep "^$pid " ps.out &&
    test_expect_code 5 e2b sandbox process attach "$ID" "$pid" > att.out && test_grep attached-output att.out &&
    p2=$(e2b sandbox exec -b "$ID" "sleep 100") &&
    e2b sandbox process kill "$ID" "$p2" &&
    wait_for 50 sh -c "! e2b sandbox process list $ID | grep -q \"^$p2 \"" &&
    test_expect_code 2 e2b sandbox process kill "$ID" 2>err && test_grep "PID or --tag" err
'

test_expect_success 'metrics and logs' '
    e2b sandbox metrics "$ID" --json > m.json &&
    python3 -c "import json; m=json.load(open(\"m.json\"))[0]; assert m[\"memUsed\"] > 0 and m[\"memTotal\"] > 0 and \"diskUsed\" in m, m" &&
    e2b sandbox logs "$ID" > logs && test_grep "sandbox started" logs
'

test_expect_success 'pause freezes it, resume thaws it' '
    e2b sandbox pause "$ID" &&
    e2b sandbox list --state paused > out && test_grep "$ID" out &&
    { grep -q FROZEN /sys/fs/cgroup/freezer/e2b/$ID/sandbox/freezer.state 2>/dev/null ||
        grep -q 1 /sys/fs/cgroup/e2b/$ID/cgroup.freeze; } &&
    test_must_fail e2b sandbox pause "$ID" 2>err && test_grep "not running" err &&
    e2b sandbox resume "$ID" &&
    test "$(e2b sandbox exec "$ID" echo back)" = back
'

test_expect_success 'kill removes everything' '
    e2b sandbox kill "$ID" && sbx_gone "$ID" &&
    test_must_fail e2b sandbox info "$ID" 2>err && test_grep "not found" err
'

test_expect_success 'an expired timeout kills the sandbox and frees everything' '
    sbx_create host --timeout 2 && id=$SBX &&
    e2b sandbox exec "$id" true &&
    sbx_wait_gone "$id"
'

test_expect_success 'a paused sandbox'"'"'s clock stops' '
    sbx_create host --timeout 3 && id=$SBX &&
    e2b sandbox pause "$id" && sleep 4 &&
    e2b sandbox info "$id" > /dev/null &&
    e2b sandbox resume "$id" --timeout 2 &&
    e2b sandbox exec "$id" true &&
    sbx_wait_gone "$id"
'

test_expect_success 'lifecycle onTimeout pause: the deadline pauses instead of killing; exec says so, set-timeout counts from the resume' '
    sbx_create host --timeout 2 --lifecycle.ontimeout pause && id=$SBX &&
    e2b sandbox info "$id" --json > i.json && test_grep "\"onTimeout\": \"pause\"" i.json &&
    e2b sandbox list --json > l.json && test_grep "\"onTimeout\": \"pause\"" l.json &&
    wait_for 100 sh -c "e2b sandbox list --state paused | grep -q $id" &&
    e2b sandbox logs "$id" > logs && test_grep "paused at the timeout" logs &&
    test_expect_code 125 e2b sandbox exec "$id" true 2>err && test_grep "is paused (resume it" err &&
    e2b sandbox set-timeout "$id" 30 &&
    test "$(( $(st "$id" deadlineBootMs) - $(st "$id" pausedAtBootMs) ))" = 30000 &&
    e2b sandbox resume "$id" --timeout 60 && test "$(e2b sandbox exec "$id" echo back)" = back &&
    e2b sandbox kill "$id" && sbx_gone "$id"
'

test_expect_success 'the default lifecycle is kill, and info says so' '
    sbx_create host && id=$SBX &&
    e2b sandbox info "$id" > info && test_grep "^Lifecycle: *autoResume=false,onTimeout=kill" info &&
    e2b sandbox kill "$id"
'

test_expect_success 'connect resumes a paused sandbox, as E2B'"'"'s does' '
    sbx_create host && id=$SBX && e2b sandbox pause "$id" &&
    echo "echo inside-\$((6*7)); exit" | e2b sandbox connect "$id" > out 2>err &&
    test_grep "inside-42" out && test_grep "Resumed sandbox $id" err &&
    test "$(st "$id" state)" = running &&
    e2b sandbox kill "$id"
'

test_expect_success 'set-timeout moves the deadline' '
    sbx_create host --timeout 300 && id=$SBX &&
    e2b sandbox set-timeout "$id" 1 &&
    sbx_wait_gone "$id"
'

# A network of the test's own: a namespace with a veth pair, a listener at
# 10.254.254.2 in it (what "the internet" is here), and one on the host's
# 127.0.0.1 that no sandbox may reach.
NS=e2b-t4000-$$
if netns_new "$NS"; then
    test_atexit "ip link del e2bt$$a"
    ip link add "e2bt$$a" type veth peer name "e2bt$$b" && ip link set "e2bt$$b" netns "$(netns_pid "$NS")" &&
        ip addr add 10.254.254.1/30 dev "e2bt$$a" && ip link set "e2bt$$a" up &&
        netns_exec "$NS" ip addr add 10.254.254.2/30 dev "e2bt$$b" &&
        netns_exec "$NS" ip link set "e2bt$$b" up && netns_exec "$NS" ip link set lo up ||
        echo "# cannot set up the test network"
fi
# connect HOST PORT from inside a sandbox: "open" or the reason it failed
CONNECT="python3 -c \"import socket,sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); print(\\\"open\\\")
except OSError as e:
    print(e)\""

test_expect_success 'no network but loopback by default; --internet reaches out through slirp4netns, not to the host loopback' '
    port=$(free_port) && out=$(free_port) &&
    { python3 -m http.server --bind 127.0.0.1 "$port" > http.log 2>&1 & } && hp=$! &&
    test_when_finished "kill $hp" &&
    { nsenter -t "$(netns_pid "$NS")" -n -- python3 -m http.server --bind 10.254.254.2 "$out" > out.log 2>&1 & } && op=$! &&
    test_when_finished "kill $op" &&
    wait_for 100 curl -sf -o /dev/null "http://127.0.0.1:$port/" &&
    wait_for 100 curl -sf -o /dev/null "http://10.254.254.2:$out/" &&
    : > http.log && sbx_create host && plain=$SBX &&
    test_must_fail e2b sandbox exec "$plain" "grep -q tap0 /proc/net/dev" &&
    e2b sandbox exec "$plain" "$CONNECT 10.254.254.2 $out" > r && cat r && test_grep "unreachable" r &&
    e2b sandbox kill "$plain" &&
    sbx_create host --internet && net=$SBX &&
    init=$(st "$net" initPid) && slirp=$(pgrep -f "^slirp4netns.* $init tap0") &&
    grep -q "^Seccomp:.*2" /proc/$slirp/status &&
    test "$(readlink /proc/$slirp/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" &&
    e2b sandbox exec "$net" "grep -q tap0 /proc/net/dev" &&
    e2b sandbox exec "$net" "grep -q 0202000A /proc/net/route" &&
    e2b sandbox exec "$net" "$CONNECT 10.254.254.2 $out" > r && cat r && test "$(cat r)" = open &&
    e2b sandbox exec "$net" "python3 -c \"import urllib.request; print(urllib.request.urlopen(\\\"http://10.254.254.2:$out/\\\", timeout=5).status)\"" > r &&
    test "$(cat r)" = 200 &&
    e2b sandbox exec "$net" "$CONNECT 10.0.2.2 $port" > r && cat r && test "$(cat r)" != open &&
    e2b sandbox exec "$net" "$CONNECT 127.0.0.1 $port" > r && cat r && test_grep "refused" r &&
    ! grep -q GET http.log &&
    e2b sandbox kill "$net" && sbx_gone "$net"
'

test_expect_success 'kill --all with a metadata filter' '
    sbx_create host -m batch=a && a=$SBX && sbx_create host -m batch=b && b=$SBX &&
    e2b sandbox kill --all -m batch=a && sbx_gone "$a" &&
    e2b sandbox info "$b" > /dev/null && e2b sandbox kill "$b" && sbx_gone "$b"
'

# A template with busybox (static) and a start command.
sbx_busybox_template() { # name start-command [ready-command]
    mkdir -p "bb-$1/root/bin" "bb-$1/root/etc" "bb-$1/root/tmp" && cp /usr/bin/busybox "bb-$1/root/bin/" &&
    for a in sh sleep echo cat yes head seq test rm; do ln -sf busybox "bb-$1/root/bin/$a"; done &&
    printf "root:x:0:0:root:/root:/bin/sh\n" > "bb-$1/root/etc/passwd" &&
    printf "root:x:0:\n" > "bb-$1/root/etc/group" &&
    printf "FROM scratch\nCOPY root/ /\n" > "bb-$1/e2b.Dockerfile" &&
    e2b template build -n "$1" -p "bb-$1" --cmd "$2" ${3:+--ready-cmd "$3"} > /dev/null 2>"bb-$1.err"
}

test_expect_success BUSYBOX 'a template'"'"'s start command runs in the background when the sandbox starts; logs show its output' '
    sbx_busybox_template startcmd "echo started in \$E2B_SANDBOX_ID; echo to-stderr >&2; exec sleep 1000" &&
    sbx_create startcmd && id=$SBX &&
    wait_for 100 sh -c "e2b sandbox logs $id | grep -q \"started in $id\"" &&
    e2b sandbox logs "$id" --json > logs.json && cat logs.json &&
    test_grep "\"message\": \"started in $id\".*\"logger\": \"startCmd\", \"stream\": \"stdout\"" logs.json &&
    test_grep "\"message\": \"to-stderr\".*\"stream\": \"stderr\"" logs.json &&
    e2b sandbox process list "$id" > ps && test_grep "startCmd .*sleep 1000" ps &&
    e2b sandbox kill "$id" && sbx_gone "$id"
'

test_expect_success BUSYBOX 'create returns once the template'"'"'s ready command succeeds, as E2B'"'"'s snapshot is taken after it' '
    sbx_busybox_template ready "sleep 1; echo up > /tmp/up-\$E2B_SANDBOX_ID; exec sleep 1000" \
        "test -f /tmp/up-\$E2B_SANDBOX_ID" &&
    sbx_create ready && id=$SBX &&
    test "$(e2b sandbox exec "$id" "cat /tmp/up-$id")" = up &&
    e2b sandbox logs "$id" > logs && test_grep "ready command succeeded: test -f /tmp/up-" logs &&
    e2b sandbox kill "$id" &&
    sbx_busybox_template never "exec sleep 1000" "test -z \"\$E2B_SANDBOX_ID\"" &&
    test_must_fail e2b sandbox create -d never --timeout 2 2>err &&
    test_grep "timeout ended before the template.s ready command succeeded" err &&
    test -z "$(ls "$E2B_RUNTIME_DIR/sandboxes")"
'

test_expect_success BUSYBOX 'the log keeps at most about 2 MiB however much a start command writes; logs -f follows it' '
    sbx_busybox_template chatty "echo chatty-waits; i=0; while test ! -e /tmp/go && test \$i -lt 600; do sleep 0.1; i=\$((i+1)); done; seq 1 40000; echo chatty-done; exec sleep 1000" &&
    sbx_create chatty && id=$SBX && d=$E2B_RUNTIME_DIR/sandboxes/$id &&
    { e2b sandbox logs -f "$id" > follow 2>&1 & } && lf=$! &&
    # the flood starts once logs -f has the log open (it has printed the
    # first line), however slow the machine
    wait_for 300 grep -q "info  chatty-waits" follow &&
    e2b sandbox exec "$id" "echo > /tmp/go" &&
    wait_for 300 sh -c "grep -q \"message.: .chatty-done\" $d/sandbox.log" &&
    test -f "$d/sandbox.log.1" && test "$(stat -c %s "$d/sandbox.log.1")" -le 1049600 &&
    test "$(stat -c %s "$d/sandbox.log")" -le 1049600 &&
    e2b sandbox logs "$id" > logs && test_grep "info  chatty-done" logs && test_grep -v "info  1$" logs &&
    wait_for 50 grep -q "info  chatty-done" follow &&
    # follow polls: what rotated away between two polls is not seen, but
    # nothing is printed twice or out of order across the rotations
    sed -n "s/.* info  \([0-9][0-9]*\)$/\1/p" follow > nums && test -s nums &&
    sort -n -c -u nums &&
    e2b sandbox kill "$id" && wait_for 50 sh -c "! kill -0 $lf 2>/dev/null"
'

test_expect_success 'an unknown template is a clear error and leaves nothing' '
    test_must_fail e2b sandbox create -d no-such-template 2>err &&
    test_grep "template .no-such-template. not found" err &&
    test -z "$(ls "$E2B_RUNTIME_DIR/sandboxes" 2>/dev/null)"
'

test_expect_success 'a template with only its ext4 image starts from the image' '
    sbx_tiny_template img4 ctx4 "echo from-image > ctx4/root/etc/marker" > tid &&
    tdir=$(readlink -f "$E2B_DATA_DIR/templates/$(cat tid)/current") &&
    test -f "$tdir/rootfs.ext4" && rm -rf "$tdir/rootfs" &&
    sbx_create img4 2>err && id=$SBX &&
    test "$(e2b sandbox exec "$id" "read x < /etc/marker; echo \$x")" = from-image &&
    e2b sandbox exec -u root "$id" "echo new > /etc/marker" &&
    test "$(e2b sandbox exec "$id" "read x < /etc/marker; echo \$x")" = new &&
    losetup -j "$tdir/rootfs.ext4" > loops && test -s loops &&
    e2b sandbox kill "$id" && sbx_gone "$id" &&
    wait_for 100 sh -c "test -z \"\$(losetup -j $tdir/rootfs.ext4)\""
'

test_expect_success '/.e2b keeps the build'"'"'s ENV_ID and BUILD_ID and adds the sandbox'"'"'s ID' '
    e2b template list --json > tl.json &&
    bid=$(python3 -c "import json,sys; print([t for t in json.load(open(\"tl.json\")) if t[\"templateID\"] == sys.argv[1]][0][\"buildID\"])" "$(cat tid)") &&
    test -n "$bid" &&
    sbx_create img4 && id=$SBX &&
    e2b sandbox exec "$id" "while read -r l; do echo \$l; done < /.e2b" > marker && cat marker &&
    test_grep "^ENV_ID=$(cat tid)$" marker && test_grep "^BUILD_ID=$bid$" marker &&
    test_grep "^TEMPLATE_ID=$(cat tid)$" marker && test_grep "^SANDBOX_ID=$id$" marker &&
    test "$(grep -c ^ENV_ID= marker)" = 1 &&
    e2b sandbox kill "$id" &&
    sbx_create host && e2b sandbox exec "$SBX" "cat /.e2b" > marker &&
    test_grep "^ENV_ID=host$" marker && test_grep "^SANDBOX_ID=$SBX$" marker &&
    e2b sandbox kill "$SBX"
'

test_expect_success 'a corrupt template image is a clear error and leaves nothing' '
    tdir=$(readlink -f "$E2B_DATA_DIR/templates/$(cat tid)/current") &&
    dd if=/dev/urandom of="$tdir/rootfs.ext4" bs=1k seek=1 count=4 conv=notrunc 2>/dev/null &&
    test_must_fail e2b sandbox create -d img4 2>err &&
    test_grep "template image .*rootfs.ext4 is not a valid ext4" err &&
    test -z "$(ls "$E2B_RUNTIME_DIR/sandboxes" 2>/dev/null)" &&
    wait_for 100 sh -c "test -z \"\$(losetup -j $tdir/rootfs.ext4)\""
'

test_expect_success 'a template with neither tree nor image is a clear error' '
    tdir=$(readlink -f "$E2B_DATA_DIR/templates/$(cat tid)/current") &&
    rm -f "$tdir/rootfs.ext4" &&
    test_must_fail e2b sandbox create -d img4 2>err &&
    test_grep "has no root file system" err
'

test_expect_success 'bad options are usage errors' '
    test_expect_code 2 e2b sandbox create -d host --timeout 0 2>err && test_grep "timeout" err &&
    test_expect_code 2 e2b sandbox create -d host -e NOEQUALS 2>err && test_grep "KEY=VALUE" err &&
    test_expect_code 2 e2b sandbox kill 2>err && test_grep "IDs or --all" err
'

test_done
