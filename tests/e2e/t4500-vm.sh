#!/bin/sh
# The vm runtime: sandboxes as QEMU microVMs booting the template's ext4
# image with the host's guest kernel. Create (from the template's setting,
# the flag and serve's default), restored from the template's snapshot
# (made by its build: fresh id, token, envs, clock), exec, files, pty,
# concurrent streams, pause to disk and resume (files and a running
# process kept, after the runtime dir is wiped as a reboot does), ports
# through serve's router and its resume on connect, kill; faults: kill -9
# of QEMU and of the supervisor, a guest kernel panic, a damaged or
# unfitting snapshot or save; clear errors for what cannot run. Under TCG
# here (E2B_VM_ACCEL=tcg), so cold boots are few: the busybox template is
# booted once by its build, and most sandboxes restore its snapshot.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

export E2B_VM_ACCEL=${E2B_VM_ACCEL:-tcg}
command -v qemu-system-x86_64 >/dev/null || { echo "1..0 # SKIP no qemu-system-x86_64"; exit 0; }
command -v busybox >/dev/null || { echo "1..0 # SKIP no busybox"; exit 0; }
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "1..0 # SKIP no guest kernel in /boot"; exit 0; }
# KVM that cannot run a stock kernel (or none): auto must pick ns
if [ ! -c /dev/kvm ] || { [ -e /sys/module/kvm_pvm ] && [ ! -e /sys/module/kvm_intel ] &&
    [ ! -e /sys/module/kvm_amd ]; }; then
    test_set_prereq NOKVM
fi

st() { python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))" \
    "$E2B_RUNTIME_DIR/sandboxes/$1/state.json" "$2"; }
# a key of state.json's "vm"
stvm() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"vm\"].get(sys.argv[2]))" \
    "$E2B_RUNTIME_DIR/sandboxes/$1/state.json" "$2"; }

# Nothing of a VM sandbox is left: what sbx_gone checks, and no QEMU named
# for it, no slirp4netns of its QEMU.
vm_gone() {
    sbx_gone "$1" || return 1
    ! pgrep -f "qemu-system-x86_64 -name e2b-$1" >/dev/null || { echo "QEMU of $1 left"; return 1; }
    [ ! -s "$TRASH/.qemu-$1" ] || ! pgrep -f "^slirp4netns.* $(cat "$TRASH/.qemu-$1") tap0" >/dev/null ||
        { echo "slirp4netns of $1 left"; return 1; }
}
vm_wait_gone() { wait_for 100 vm_gone "$1" || vm_gone "$1"; }
vm_create() { sbx_create "$@" && st "$SBX" initPid > "$TRASH/.qemu-$SBX"; }

# The template: static busybox, its runtime set to vm (the template's word).
mkdir -p bb/root/bin bb/root/etc bb/root/tmp bb/root/www && cp "$(command -v busybox)" bb/root/bin/ &&
for a in $(bb/root/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "bb/root/bin/$a"; done &&
printf "root:x:0:0:root:/root:/bin/sh\n" > bb/root/etc/passwd && printf "root:x:0:\n" > bb/root/etc/group &&
echo served-from-the-vm > bb/root/www/index.html &&
printf "FROM scratch\nCOPY root/ /\n" > bb/e2b.Dockerfile &&
e2b template build -n vmbb -p bb --runtime vm > tid 2>build.err ||
    { echo "Bail out! cannot build the template: $(cat build.err)"; exit 1; }

test_expect_success 'the template records its runtime; a create follows it and says which accelerator runs it' '
    tdir=$(readlink -f "$E2B_DATA_DIR/templates/$(cat tid)/current") &&
    test_grep "\"runtime\": \"vm\"" "$tdir/template.json" &&
    t0=$(date +%s%N) && vm_create vmbb --timeout 600 -e GREETING=hello && t1=$(date +%s%N) &&
    echo "# create: $(( (t1 - t0) / 1000000 )) ms" &&
    test "$(st "$SBX" runtime)" = vm && test "$(st "$SBX" accelerator)" = tcg &&
    e2b sandbox info "$SBX" > info && test_grep "^Runtime: *vm" info && test_grep "^Accelerator: *tcg" info &&
    e2b sandbox list --json > list.json &&
    python3 - "$SBX" <<-\EOF &&
	import json, sys
	s = [s for s in json.load(open("list.json")) if s["sandboxID"] == sys.argv[1]][0]
	assert s["runtime"] == "vm" and s["accelerator"] == "tcg", s
	EOF
    echo "$SBX" > main-id
'
ID=$(cat main-id 2>/dev/null)
[ -n "$ID" ] || { echo "Bail out! no VM sandbox: $(tail -5 "$TRASH/.test-output")"; exit 1; }

test_expect_success 'the build saved the template as a VM; a create restores it with its own id, token, envs and clock' '
    snap=$(readlink -f "$E2B_DATA_DIR/templates/$(cat tid)/current")/snapshot-vm &&
    test -s "$snap/vmstate" && test -s "$snap/snapshot.json" && test -f "$snap/memory" && test -f "$snap/disk.ext4" &&
    e2b sandbox logs "$ID" > log && test_grep "restored from $snap" log &&
    sbx_create vmbb --secure -e WHO=second && id2=$SBX && test "$id2" != "$ID" &&
    e2b sandbox info --json "$id2" > i2.json &&
    tok=$(python3 -c "import json; print(json.load(open(\"i2.json\"))[\"envdAccessToken\"])") && test -n "$tok" &&
    sock=$E2B_RUNTIME_DIR/sandboxes/$id2/envd.sock &&
    test "$(curl -s -o /dev/null -w "%{http_code}" --unix-socket "$sock" -X POST http://sandbox/init -d "{}")" = 401 &&
    test "$(e2b sandbox exec "$id2" "echo \$WHO \$E2B_SANDBOX_ID; grep SANDBOX_ID /.e2b")" = "second $id2
SANDBOX_ID=$id2" &&
    guest=$(e2b sandbox exec "$id2" "date +%s") && host=$(date +%s) &&
    test $((host - guest)) -lt 5 && test $((guest - host)) -lt 5 &&
    e2b sandbox kill "$id2" && vm_wait_gone "$id2"
'

test_expect_success 'exec: output, exit status, stdin, env; it is a VM of its own' '
    t0=$(date +%s%N) && test "$(e2b sandbox exec "$ID" echo hi)" = hi && t1=$(date +%s%N) &&
    echo "# exec round trip: $(( (t1 - t0) / 1000000 )) ms" &&
    test_expect_code 7 e2b sandbox exec "$ID" "exit 7" &&
    test "$(echo piped | e2b sandbox exec "$ID" cat)" = piped &&
    test "$(e2b sandbox exec "$ID" "echo \$GREETING \$E2B_SANDBOX_ID")" = "hello $ID" &&
    test "$(e2b sandbox exec -u root "$ID" id -u)" = 0 &&
    test "$(e2b sandbox exec "$ID" hostname)" = e2b &&
    e2b sandbox exec "$ID" "cat /proc/1/cmdline" | tr "\0" " " > cmdline && test_grep "^/init --vm" cmdline &&
    test "$(e2b sandbox exec "$ID" "uname -r")" = "$(stvm "$ID" kernelVersion)" &&
    e2b sandbox exec "$ID" "grep SANDBOX_ID=$ID /.e2b" &&
    test_must_fail e2b sandbox exec "$ID" "grep -q eth0 /proc/net/dev"
'

test_expect_success 'files: upload and download byte for byte (4 MB), and a 64 MB stream each way' '
    head -c 4000000 /dev/urandom > blob &&
    e2b sandbox files upload "$ID" blob /tmp/blob &&
    test "$(e2b sandbox exec "$ID" "sha256sum /tmp/blob" | cut -d" " -f1)" = "$(sha256sum < blob | cut -d" " -f1)" &&
    e2b sandbox files download "$ID" /tmp/blob back && cmp blob back &&
    echo data | e2b sandbox files write "$ID" /tmp/w.txt && test "$(e2b sandbox files cat "$ID" /tmp/w.txt)" = data &&
    head -c 64000000 /dev/urandom > big &&
    t0=$(date +%s%N) && e2b sandbox files upload "$ID" big /tmp/big && t1=$(date +%s%N) &&
    e2b sandbox files download "$ID" /tmp/big bigback && t2=$(date +%s%N) && cmp big bigback &&
    echo "# 64 MB up $(( (t1 - t0) / 1000000 )) ms, down $(( (t2 - t1) / 1000000 )) ms" &&
    e2b sandbox exec "$ID" "rm /tmp/big"
'

test_expect_success 'many streams at once: 8 concurrent execs, each its own output' '
    for i in 1 2 3 4 5 6 7 8; do
        { e2b sandbox exec "$ID" "echo start-$i; sleep 1; echo end-$i" > "c$i.out" & } || return 1
    done &&
    wait &&
    for i in 1 2 3 4 5 6 7 8; do test "$(cat c$i.out)" = "start-$i
end-$i" || return 1; done
'

test_expect_success 'clients that go away mid-stream leave the link working' '
    e2b sandbox exec "$ID" "head -c 50000000 /dev/zero > /tmp/zero" &&
    sock=$E2B_RUNTIME_DIR/sandboxes/$ID/envd.sock &&
    for i in 1 2 3; do
        { curl -s --unix-socket "$sock" "http://sandbox/files?path=/tmp/zero&username=root" | head -c 100000 > /dev/null; } ||
            return 1
    done &&
    { head -c 50000000 /dev/zero | curl -s --unix-socket "$sock" -m 2 -T - \
        "http://sandbox/files?path=/tmp/up&username=root" > /dev/null || :; } &&
    test "$(e2b sandbox exec "$ID" "echo still-here")" = still-here &&
    e2b sandbox exec "$ID" "rm -f /tmp/zero /tmp/up"
'

test_expect_success 'kill -9 of the CLI in the middle of an exec: the sandbox goes on' '
    { e2b sandbox exec "$ID" "sleep 300" & } && cli=$! &&
    wait_for 300 sh -c "e2b sandbox process list $ID | grep -q \"sleep 300\"" && kill -9 $cli &&
    test "$(e2b sandbox exec "$ID" "echo on")" = on
'

test_expect_success 'pty: a scripted session passes its exit status' '
    echo "echo hi-from-pty; tty; exit 3" > keys &&
    test_expect_code 3 timeout 120 script -qec "e2b sandbox pty $ID" /dev/null < keys > pty.out &&
    test_grep "hi-from-pty" pty.out && test_grep "/dev/pts/" pty.out
'

test_expect_success 'pause saves the VM to disk and ends QEMU; it outlives the runtime dir; resume keeps files and a running process' '
    e2b sandbox exec "$ID" "echo kept > /tmp/kept; (i=0; while :; do i=\$((i+1)); echo \$i > /tmp/count; sleep 0.2; done) >/dev/null 2>&1 &" &&
    wait_for 100 e2b sandbox exec "$ID" "test -s /tmp/count" &&
    qemu=$(st "$ID" initPid) && e2b sandbox set-timeout "$ID" 120 &&
    e2b sandbox pause "$ID" &&
    sd=$E2B_DATA_DIR/sandboxes/$ID &&
    test -s "$sd/vmstate" && test -f "$sd/disk.ext4" && test -s "$sd/snapshot.json" && test -s "$sd/sandbox.log" &&
    test ! -e "$E2B_RUNTIME_DIR/sandboxes/$ID" && ! kill -0 "$qemu" 2>/dev/null &&
    ! pgrep -f "qemu-system-x86_64 -name e2b-$ID" > /dev/null &&
    e2b sandbox list --state paused > paused && test_grep "$ID.*paused" paused &&
    test_expect_code 125 e2b sandbox exec "$ID" true 2>err && test_grep "is paused" err &&
    left=$(python3 -c "import json; print(json.load(open(\"$sd/state.json\"))[\"timeLeftMs\"])") &&
    test "$left" -gt 100000 && test "$left" -le 120000 &&
    rm -rf "$E2B_RUNTIME_DIR/sandboxes" &&
    e2b sandbox list --state paused > paused && test_grep "$ID" paused &&
    e2b sandbox resume --timeout 100 "$ID" && test ! -e "$sd" &&
    python3 - "$E2B_RUNTIME_DIR/sandboxes/$ID/state.json" <<-\EOF &&
	import json, sys, time
	st = json.load(open(sys.argv[1]))
	left = st["deadlineBootMs"] - time.clock_gettime(time.CLOCK_BOOTTIME) * 1000
	assert 90000 < left <= 100000, left  # counted from the resume
	EOF
    test "$(e2b sandbox exec "$ID" "cat /tmp/kept")" = kept &&
    c1=$(e2b sandbox exec "$ID" "cat /tmp/count") &&
    wait_for 100 sh -c "test \$(e2b sandbox exec $ID \"cat /tmp/count\") -gt $c1" &&
    e2b sandbox metrics "$ID" --json > m.json &&
    python3 -c "import json; m=json.load(open(\"m.json\"))[0]; assert m[\"memUsed\"] > 0 and m[\"diskTotal\"] > 0, m" &&
    e2b sandbox logs "$ID" > logs && test_grep "sandbox started" logs && test_grep "restored from $sd" logs
'

test_expect_success 'the create flag beats the template; auto picks ns without usable KVM' '
    sbx_create vmbb --runtime ns && test "$(st "$SBX" runtime)" = ns &&
    test "$(st "$SBX" accelerator)" = None && e2b sandbox kill "$SBX" &&
    if test_have_prereq NOKVM; then
        sbx_create vmbb --runtime auto && test "$(st "$SBX" runtime)" = ns && e2b sandbox kill "$SBX"
    fi
'

test_expect_success 'kill: no QEMU, socket, disk or cgroup is left' '
    d=$E2B_RUNTIME_DIR/sandboxes/$ID &&
    test -S "$d/envd.sock" && test -S "$d/qmp.sock" && test -f "$d/disk.ext4" &&
    pgrep -f "qemu-system-x86_64 -name e2b-$ID" > /dev/null &&
    e2b sandbox kill "$ID" && vm_gone "$ID" &&
    test_must_fail e2b sandbox info "$ID" 2>err && test_grep "not found (it ended: killed)" err
'

test_expect_success ROOT 'volumes: the image a disk of the VM, mounted by its kernel; one kernel at a time; kept after a kill unsynced, a pause to disk and resume' '
    vid=$(e2b volume create vmdata) && img=$E2B_DATA_DIR/volumes/$vid/volume.img &&
    echo from-the-host > in.txt && e2b volume cp in.txt vmdata:/in.txt &&
    vm_create vmbb --volume vmdata:/mnt/v && id=$SBX &&
    test "$(e2b sandbox exec "$id" "cat /mnt/v/in.txt")" = from-the-host &&
    e2b sandbox exec "$id" "grep \" /mnt/v \" /proc/mounts" > m && test_grep "^/dev/vd[a-z] /mnt/v ext4 rw,nosuid,nodev" m &&
    test "$(e2b sandbox exec "$id" "ls /sys/block | grep -c ^vd")" = 3 &&
    e2b sandbox logs "$id" > log &&
    test_grep "boots afresh: .*it was made with 0 volume disks, this sandbox mounts 1" log &&
    e2b sandbox exec "$id" "echo from-the-vm > /mnt/v/vm.txt" &&
    ! grep -q " $E2B_DATA_DIR/volumes/$vid/fs " /proc/self/mountinfo && ! losetup -j "$img" | grep -q . &&
    test_expect_code 1 e2b volume cp vmdata:/in.txt - 2>err && test_grep "in use by sandbox $id, a VM" err &&
    test_must_fail e2b sandbox create -d host --volume vmdata:/x 2>err && test_grep "in use by sandbox $id, a VM" err &&
    test_must_fail e2b sandbox create -d vmbb --volume vmdata:/y 2>err && test_grep "in use by sandbox $id, a VM" err &&
    test_expect_code 1 e2b volume rm vmdata 2>err && test_grep "in use by sandbox $id" err &&
    e2b sandbox pause "$id" && vm_wait_gone "$id" &&
    test_expect_code 1 e2b volume cp vmdata:/in.txt - 2>err && test_grep "in use by sandbox $id, a VM" err &&
    e2b sandbox resume "$id" && st "$id" initPid > "$TRASH/.qemu-$id" &&
    test "$(e2b sandbox exec "$id" "cat /mnt/v/vm.txt")" = from-the-vm &&
    e2b sandbox exec "$id" "echo unsynced > /mnt/v/last.txt" &&
    e2b sandbox kill "$id" && vm_wait_gone "$id" &&
    test "$(e2b volume cp vmdata:/vm.txt -)" = from-the-vm && test "$(e2b volume cp vmdata:/last.txt -)" = unsynced
'

test_expect_success ROOT 'volumes: a VM is refused a volume an ns sandbox has, gets it once that one ended, and takes a volume once' '
    sbx_create host --volume vmdata:/mnt/v && ns=$SBX &&
    test_must_fail e2b sandbox create -d vmbb --volume vmdata:/v 2>err &&
    test_grep "a VM needs volume .vmdata. alone: the volume is in use by sandbox $ns" err &&
    e2b sandbox exec "$ns" "echo from-ns > /mnt/v/ns.txt" && e2b sandbox kill "$ns" && sbx_wait_gone "$ns" &&
    test_must_fail e2b sandbox create -d vmbb --volume vmdata:/a --volume vmdata:/b 2>err && test_grep "mounted twice" err &&
    vm_create vmbb --volume vmdata:/data && id=$SBX &&
    test "$(e2b sandbox exec "$id" "cat /data/ns.txt /data/last.txt")" = "from-ns
unsynced" &&
    e2b sandbox kill "$id" && vm_wait_gone "$id" && e2b volume rm vmdata
'

test_expect_success 'serve --runtime vm: a REST create of a template that names none is a VM (booted); envd and a port route to it; pause, and connect resumes it' '
    printf "FROM scratch\nCOPY root/ /\n" > bb/e2b.Dockerfile &&
    e2b template build -n plainbb -p bb > /dev/null 2>&1 &&
    key=$(e2b key create -q --name t4500) && port=$(free_port) && url=http://127.0.0.1:$port &&
    { e2b serve --listen 127.0.0.1:$port --runtime vm > serve.log 2>&1 & } && sp=$! &&
    test_when_finished "kill $sp" &&
    wait_for 50 curl -sf -o /dev/null "$url/health" &&
    curl -sf -X POST -H "X-API-Key: $key" -H "Content-Type: application/json" \
        -d "{\"templateID\": \"plainbb\", \"timeout\": 300}" "$url/sandboxes" > created.json &&
    id=$(python3 -c "import json; print(json.load(open(\"created.json\"))[\"sandboxID\"])") &&
    st "$id" initPid > "$TRASH/.qemu-$id" &&
    test "$(st "$id" runtime)" = vm &&
    tok=$(python3 -c "import json; print(json.load(open(\"created.json\")).get(\"envdAccessToken\", \"\"))") &&
    e2b sandbox exec "$id" "busybox httpd -p 127.0.0.1:8080 -h /www" &&
    test "$(curl -s -m 30 -H "E2b-Sandbox-Id: $id" -H "E2b-Sandbox-Port: 8080" "$url/index.html")" = served-from-the-vm &&
    code=$(curl -s -o /dev/null -w "%{http_code}" -m 30 -H "E2b-Sandbox-Id: $id" -H "X-Access-Token: $tok" "$url/health") &&
    test "$code" = 204 &&
    code=$(curl -s -o closed.out -w "%{http_code}" -m 30 -H "E2b-Sandbox-Id: $id" -H "E2b-Sandbox-Port: 8081" "$url/") &&
    test "$code" = 502 &&
    curl -sf -X POST -H "X-API-Key: $key" "$url/sandboxes/$id/pause" &&
    test -s "$E2B_DATA_DIR/sandboxes/$id/vmstate" && test ! -e "$E2B_RUNTIME_DIR/sandboxes/$id" &&
    code=$(curl -s -o conn.json -w "%{http_code}" -X POST -H "X-API-Key: $key" -H "Content-Type: application/json" \
        -d "{\"timeout\": 300}" "$url/sandboxes/$id/connect") &&
    test "$code" = 201 && test ! -e "$E2B_DATA_DIR/sandboxes/$id" &&
    st "$id" initPid > "$TRASH/.qemu-$id" &&
    test "$(curl -s -m 30 -H "E2b-Sandbox-Id: $id" -H "E2b-Sandbox-Port: 8080" "$url/index.html")" = served-from-the-vm &&
    curl -sf -X DELETE -H "X-API-Key: $key" "$url/sandboxes/$id" &&
    vm_wait_gone "$id"
'

test_expect_success 'kill -9 of QEMU: the sandbox ends, says why, and leaves nothing' '
    vm_create vmbb && id=$SBX && qemu=$(st "$id" initPid) &&
    kill -9 "$qemu" &&
    vm_wait_gone "$id" &&
    test_must_fail e2b sandbox info "$id" 2>err && test_grep "QEMU was killed (signal 9)" err
'

test_expect_success 'kill -9 of the supervisor: QEMU dies with it, the next e2b run clears the rest (and only it)' '
    { sleep 300 & } && victim=$! && test_when_finished "kill $victim" &&
    vm_create vmbb && id=$SBX && qemu=$(st "$id" initPid) && sup=$(st "$id" supervisorPid) &&
    kill -9 "$sup" &&
    wait_for 100 sh -c "! kill -0 $qemu 2>/dev/null" &&
    echo "$victim 1" > "$E2B_RUNTIME_DIR/sandboxes/$id/qemu.pid" &&
    e2b sandbox list > /dev/null && vm_wait_gone "$id" && kill -0 "$victim"
'

# The internet: a listener in a network namespace of the test's own (as
# t4000 makes it), and one on the host's loopback no sandbox may reach.
NS=e2b-t4500-$$
if netns_new "$NS"; then
    test_atexit "ip link del e2bv$$a"
    ip link add "e2bv$$a" type veth peer name "e2bv$$b" && ip link set "e2bv$$b" netns "$(netns_pid "$NS")" &&
        ip addr add 10.254.253.1/30 dev "e2bv$$a" && ip link set "e2bv$$a" up &&
        netns_exec "$NS" ip addr add 10.254.253.2/30 dev "e2bv$$b" &&
        netns_exec "$NS" ip link set "e2bv$$b" up && netns_exec "$NS" ip link set lo up &&
        test_set_prereq TESTNET
fi

test_expect_success TESTNET '--internet reaches out, not to the host loopback; a guest kernel panic is reported and cleaned up' '
    out=$(free_port) && lo=$(free_port) &&
    { nsenter -t "$(netns_pid "$NS")" -n -- python3 -m http.server --bind 10.254.253.2 "$out" > out.log 2>&1 & } && op=$! &&
    test_when_finished "kill $op" &&
    { python3 -m http.server --bind 127.0.0.1 "$lo" > lo.log 2>&1 & } && lp=$! &&
    test_when_finished "kill $lp" &&
    wait_for 100 curl -sf -o /dev/null "http://10.254.253.2:$out/" &&
    wait_for 100 curl -sf -o /dev/null "http://127.0.0.1:$lo/" && : > lo.log &&
    vm_create vmbb --internet && id=$SBX && qemu=$(st "$id" initPid) &&
    pgrep -f "^slirp4netns.* $qemu tap0" > /dev/null &&
    test "$(readlink /proc/$qemu/ns/net)" != "$(readlink /proc/self/ns/net)" &&
    e2b sandbox exec "$id" "printf \"GET / HTTP/1.0\r\n\r\n\" | nc -w 10 10.254.253.2 $out" > r &&
    test_grep "200 OK" r &&
    test_must_fail e2b sandbox exec "$id" "printf \"GET / HTTP/1.0\r\n\r\n\" | nc -w 5 10.0.2.2 $lo | grep -q 200" &&
    ! grep -q GET lo.log &&
    test_expect_code 125 e2b sandbox exec -u root "$id" "echo c > /proc/sysrq-trigger" &&
    vm_wait_gone "$id" &&
    test_must_fail e2b sandbox info "$id" 2>err &&
    test_grep "the guest kernel panicked: sysrq triggered crash" err
'

test_expect_success TESTNET 'outbound rules hold in a VM, and again after a pause to disk and resume (a new QEMU, the filter made anew)' '
    good=$(free_port) && bad=$(free_port) &&
    { nsenter -t "$(netns_pid "$NS")" -n -- python3 -m http.server --bind 10.254.253.2 "$good" > good.log 2>&1 & } && gp=$! &&
    test_when_finished "kill $gp" &&
    { nsenter -t "$(netns_pid "$NS")" -n -- python3 -m http.server --bind 10.254.253.2 "$bad" > bad.log 2>&1 & } && bp=$! &&
    test_when_finished "kill $bp" &&
    wait_for 100 curl -sf -o /dev/null "http://10.254.253.2:$good/" && wait_for 100 curl -sf -o /dev/null "http://10.254.253.2:$bad/" &&
    get="printf \"GET / HTTP/1.0\r\n\r\n\" | nc -w 5 10.254.253.2" &&
    vm_create vmbb --deny-out ALL_TRAFFIC --allow-out "10.254.253.2:$good" && id=$SBX &&
    e2b sandbox exec "$id" "$get $good" > r && test_grep "200 OK" r &&
    test_must_fail e2b sandbox exec "$id" "$get $bad | grep -q 200" &&
    e2b sandbox pause "$id" && vm_wait_gone "$id" && e2b sandbox resume "$id" && st "$id" initPid > "$TRASH/.qemu-$id" &&
    e2b sandbox exec "$id" "$get $good" > r && test_grep "200 OK" r &&
    test_must_fail e2b sandbox exec "$id" "$get $bad | grep -q 200" &&
    e2b sandbox kill "$id" && vm_wait_gone "$id"
'

test_expect_success 'a damaged or unfitting snapshot: creates boot afresh and say why; a damaged save fails its resume, which leaves nothing and keeps it paused' '
    snap=$(readlink -f "$E2B_DATA_DIR/templates/$(cat tid)/current")/snapshot-vm &&
    cp "$snap/vmstate" vmstate.bak && cp "$snap/snapshot.json" snapshot.bak &&
    test_when_finished "cp $TRASH/vmstate.bak $snap/vmstate; cp $TRASH/snapshot.bak $snap/snapshot.json" &&
    truncate -s 1000 "$snap/vmstate" &&
    vm_create vmbb && id=$SBX &&
    e2b sandbox logs "$id" > log && test_grep "boots afresh: the save in $snap is damaged: vmstate is 1000 bytes" log &&
    test "$(e2b sandbox exec "$id" "echo cold")" = cold &&
    cp vmstate.bak "$snap/vmstate" &&
    sed "s/\"qemuId\": \"[^\"]*\"/\"qemuId\": \"another\"/" snapshot.bak > "$snap/snapshot.json" &&
    vm_create vmbb && id2=$SBX &&
    e2b sandbox logs "$id2" > log2 && test_grep "does not fit this VM: it was made with another QEMU" log2 &&
    e2b sandbox kill "$id2" && vm_wait_gone "$id2" &&
    e2b sandbox pause "$id" && vm_wait_gone "$id" &&
    truncate -s 4096 "$E2B_DATA_DIR/sandboxes/$id/vmstate" &&
    test_must_fail e2b sandbox resume "$id" 2>err &&
    test_grep "cannot resume sandbox .$id. (it stays paused)" err && test_grep "vmstate is 4096 bytes" err &&
    vm_wait_gone "$id" &&
    e2b sandbox list --state paused > paused && test_grep "$id" paused &&
    e2b sandbox kill "$id" && test ! -e "$E2B_DATA_DIR/sandboxes/$id" &&
    test_must_fail e2b sandbox info "$id"
'

test_expect_success 'what cannot run as a VM is a clear error and leaves nothing' '
    test_must_fail e2b sandbox create -d host --runtime vm 2>err &&
    test_grep "the .host. template cannot run as a VM" err &&
    test_must_fail env E2B_VM_KERNEL=/nonexistent e2b sandbox create -d vmbb 2>err &&
    test_grep "cannot read the guest kernel /nonexistent (install linux-image-cloud-amd64 or pass --kernel)" err &&
    test_must_fail e2b sandbox create -d vmbb --kernel "$TRASH/tid" 2>err &&
    test_grep "is not a bzImage kernel" err &&
    test_must_fail env E2B_VM_ACCEL=fast e2b sandbox create -d vmbb 2>err && test_grep "E2B_VM_ACCEL must be" err &&
    test_expect_code 2 e2b sandbox create -d vmbb --runtime xen 2>err && test_grep "ns, vm or auto" err &&
    test -z "$(ls "$E2B_RUNTIME_DIR/sandboxes")" &&
    test "$(ls "$E2B_DATA_DIR/cache/vm/" | grep -c "^initramfs-")" = 1
'

test_done
