#!/bin/sh
# bench/snapshot.sh - snapshots of a running VM sandbox and restores from
# them, each beside the same done by hand with plain QEMU in the same run:
#   1. `e2b sandbox snapshot create` of a VM holding 50 MB of its own in
#      memory and 10 MB on its disk, against QMP stop, migrate to a file,
#      a sparse copy of the disk and cont, typed by hand into the same
#      sandbox's QEMU (same machine, same memory; its link quieted first
#      through the relay, as a save needs); both the time the VM stands
#      still and the whole call (goal: at most 1.2x);
#   2. a create from that snapshot, against QEMU started by hand with the
#      very command line of the sandbox's QEMU, loading the same migration
#      stream (-incoming, migrate-incoming fd:) until it runs, then told on
#      the link what the supervisor tells a restored guest (RESUME) until
#      the guest's READY (goal: at most 1.2x);
#   3. fork -n 3 of the sandbox.
# The ns runtime against criu dump/restore: bench/checkpoint.sh (make
# bench runs both). Needs root, qemu-system-x86_64, busybox
# and a guest kernel. BENCH_N runs per measure (5), medians.
set -eu
B=${E2B_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
E2B=$B/e2b
export E2B_ENVD=$B/envd
N=${BENCH_N:-5}
command -v qemu-system-x86_64 >/dev/null || { echo "snapshot bench: no qemu-system-x86_64"; exit 0; }
command -v busybox >/dev/null || { echo "snapshot bench: no busybox"; exit 0; }
scratch=$(mktemp -d /tmp/e2b-bench-snap.XXXXXX)
run=$(mktemp -d /run/e2b-bench-snap.XXXXXX)
export E2B_RUNTIME_DIR=$run E2B_DATA_DIR=$scratch/data HOME=$scratch
cleanup() {
    "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :
    rm -rf "$scratch" "$run"
}
trap cleanup EXIT

us() { echo $(($(date +%s%N) / 1000)); }
ms2() { echo "scale=1; $1 / 1000" | bc; } # us -> ms
ratio() { echo "scale=2; $1 / $2" | bc; }
median() { echo "$@" | tr " " "\n" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
meta() { # snapshot ID, key -> its snapshot.json's value
    python3 - "$E2B_DATA_DIR/snapshots" "$1" "$2" <<-\EOF
	import json, os, sys
	for k in os.listdir(sys.argv[1]):
	    p = os.path.join(sys.argv[1], k, "snapshot.json")
	    if os.path.exists(p):
	        m = json.load(open(p))
	        if m["snapshotID"] == sys.argv[2]:
	            print(os.path.join(sys.argv[1], k) if sys.argv[3] == "dir" else m[sys.argv[3]])
	EOF
}

# The template: static busybox, saved as a VM by its build.
ctx=$scratch/bb
mkdir -p "$ctx/root/bin" "$ctx/root/etc" "$ctx/root/tmp"
cp "$(command -v busybox)" "$ctx/root/bin/"
for a in $("$ctx/root/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$ctx/root/bin/$a"; done
printf "root:x:0:0:root:/root:/bin/sh\n" > "$ctx/root/etc/passwd"
printf "root:x:0:\n" > "$ctx/root/etc/group"
printf "FROM scratch\nCOPY root/ /\n" > "$ctx/e2b.Dockerfile"
"$E2B" template build -q -n bench-snap -p "$ctx" --runtime vm >/dev/null 2>&1

id=$("$E2B" sandbox create -d bench-snap --timeout 1200)
"$E2B" sandbox exec -u root "$id" "mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm && head -c 50000000 /dev/urandom > /dev/shm/mem && head -c 10000000 /dev/urandom > /tmp/disk && sync"
sdir=$run/sandboxes/$id
accel=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accelerator"])' "$sdir/state.json")
echo "VM snapshots ($accel; $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg); $N runs each, medians)"

# 1. e2b's snapshot, and the same by hand on the same QEMU
cat > "$scratch/qmp.py" <<-\EOF
	# QMP by hand: save (stop, migrate to a file, copy the disk, cont) or
	# restore (QEMU of the same command line, -incoming, until it runs)
	import json, os, socket, struct, subprocess, sys, time
	def qmp(sock):
	    f = sock.makefile("rwb")
	    f.readline()
	    def call(cmd, args=None, fds=None):
	        msg = json.dumps({"execute": cmd, **({"arguments": args} if args else {})}).encode() + b"\n"
	        if fds:
	            socket.send_fds(sock, [msg], fds)
	        else:
	            f.write(msg); f.flush()
	        while True:
	            r = json.loads(f.readline())
	            if "return" in r or "error" in r:
	                if "error" in r:
	                    sys.exit(f"{cmd}: {r['error']}")
	                return r["return"]
	    call("qmp_capabilities")
	    return call
	def wait_migrated(call):
	    while call("query-migrate").get("status") not in ("completed", "failed"):
	        time.sleep(0.005)
	mode = sys.argv[1]
	def link(sdir, what): # the relay quiets the link before a save, as e2b's pause does
	    c = socket.socket(socket.AF_UNIX); c.connect(os.path.join(sdir, "ports.sock"))
	    c.sendall(what + b"\n")
	    if c.makefile("rb").readline().strip() != b"ok":
	        sys.exit(f"the link did not {what.decode()}")
	if mode == "save": # qmp.sock disk.ext4 out-dir
	    sdir = os.path.dirname(sys.argv[2])
	    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[2]); call = qmp(s)
	    out = os.open(os.path.join(sys.argv[4], "vmstate"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
	    link(sdir, b"suspend")
	    t0 = time.monotonic()
	    call("stop")
	    call("migrate-set-parameters", {"max-bandwidth": 1 << 40})
	    call("getfd", {"fdname": "hand"}, [out])
	    call("migrate", {"uri": "fd:hand"})
	    wait_migrated(call)
	    subprocess.run(["cp", "--sparse=always", sys.argv[3], os.path.join(sys.argv[4], "disk.ext4")], check=True)
	    call("cont")
	    t1 = time.monotonic()
	    link(sdir, b"resume")
	    os.fsync(out)
	    fd = os.open(os.path.join(sys.argv[4], "disk.ext4"), os.O_RDONLY)
	    os.fsync(fd)
	    t2 = time.monotonic()
	    print(int((t1 - t0) * 1e6), int((t2 - t0) * 1e6))
	else: # restore: cmdline-file vmstate disk-copy
	    argv = open(sys.argv[2], "rb").read().split(b"\0")[:-1]
	    argv = [a.decode() for a in argv]
	    if "-incoming" not in argv:
	        argv += ["-incoming", "defer"]
	    for i, a in enumerate(argv): # the disk: the copy the save made
	        if a.startswith("id=disk,file="):
	            rest = a.split(",", 2)[2]
	            argv[i] = f"id=disk,file={sys.argv[4]},{rest}".replace("format=qcow2", "format=raw")
	    link = socket.socketpair()
	    qdir = sys.argv[5]
	    qpath = os.path.join(qdir, "qmp.sock")
	    q = socket.socket(socket.AF_UNIX); q.bind(qpath); q.listen(1)
	    vs = os.open(sys.argv[3], os.O_RDONLY)
	    fds = {3: link[1].fileno(), 4: q.fileno(), 5: vs}
	    def child():
	        for n, fd in fds.items():
	            os.dup2(os.dup(fd), n)
	    t0 = time.monotonic()
	    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
	                         stderr=subprocess.DEVNULL, pass_fds=(3, 4, 5), preexec_fn=child)
	    s = socket.socket(socket.AF_UNIX)
	    for _ in range(1000):
	        try:
	            s.connect(qpath); break
	        except OSError:
	            time.sleep(0.002)
	    call = qmp(s)
	    call("migrate-incoming", {"uri": "fd:5"})
	    while True:
	        st = call("query-status")["status"]
	        if st == "running":
	            break
	        if st != "inmigrate":
	            call("cont")
	        time.sleep(0.002)
	    t1 = time.monotonic()
	    # what the supervisor's relay then does: RESUME on the link (the
	    # guest sets its clock and posts envd's /init), until its READY
	    cfg = json.dumps({"version": 1, "user": "root", "hostname": "e2b", "internet": False,
	                      "sandboxID": "handhandhandhandhand", "wallMs": int(time.time() * 1000),
	                      "envdInit": json.dumps({"envVars": {}, "accessToken": ""})}).encode()
	    link[0].sendall(struct.pack(">BBHII", 14, 0, 0, 0, len(cfg)) + cfg)
	    buf = b""
	    while True:
	        while len(buf) < 12 or len(buf) < 12 + struct.unpack(">BBHII", buf[:12])[4]:
	            c = link[0].recv(65536)
	            if not c:
	                sys.exit("the hand-restored VM's link closed")
	            buf += c
	        typ, _, _, _, n = struct.unpack(">BBHII", buf[:12])
	        body, buf = buf[12:12 + n], buf[12 + n:]
	        if typ == 3: # READY
	            if body:
	                sys.exit(f"the hand-restored VM said: {body.decode()}")
	            break
	    t2 = time.monotonic()
	    print(int((t1 - t0) * 1e6), int((t2 - t0) * 1e6))
	    p.kill(); p.wait()
	EOF
e="" still="" pause="" h="" hpause=""
for i in $(seq "$N"); do # interleaved: the machine's other work weighs on both alike
    t0=$(us); s=$("$E2B" sandbox snapshot create "$id"); t1=$(us)
    e="$e $((t1 - t0))" still="$still $(($(meta "$s" saveMs) * 1000))" pause="$pause $(($(meta "$s" pauseMs) * 1000))"
    [ "$i" = "$N" ] && keep=$s || "$E2B" sandbox snapshot rm -q "$s"
    rm -rf "$scratch/hand" && mkdir -p "$scratch/hand"
    set -- $(python3 "$scratch/qmp.py" save "$sdir/qmp.sock" "$sdir/disk.ext4" "$scratch/hand")
    hpause="$hpause $1" h="$h $2"
done
e=$(median $e) still=$(median $still) pause=$(median $pause) h=$(median $h) hpause=$(median $hpause)
vmstate=$(stat -c %s "$(meta "$keep" dir)/save/vmstate")
hsize=$(stat -c %s "$scratch/hand/vmstate")
echo "VM with 50 MB in memory and 10 MB on disk; migration stream: e2b $((vmstate / 1000000)) MB, by hand $((hsize / 1000000)) MB"
echo "snapshot, the VM standing still (QMP stop to cont: the stream and the disk copy):"
echo "                                   e2b $(ms2 "$still") ms, by hand $(ms2 "$hpause") ms   (e2b/hand: $(ratio "$still" "$hpause"); goal <= 1.2)"
echo "snapshot, its connections paused (the link quiet, stop .. cont, the link and envd told): e2b $(ms2 "$pause") ms"
echo "snapshot, all of it (e2b: the CLI; by hand: to the files on disk): e2b $(ms2 "$e") ms, by hand $(ms2 "$h") ms   (e2b/hand: $(ratio "$e" "$h"))"

# 2. restore: a create from the snapshot, and QEMU by hand from the same stream
cp "/proc/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["initPid"])' "$sdir/state.json")/cmdline" "$scratch/cmdline"
r="" rq="" hrun="" hr=""
for i in $(seq "$N"); do
    t0=$(us); c=$("$E2B" sandbox create -d "$keep" --timeout 600); t1=$(us)
    r="$r $((t1 - t0))"
    rq="$rq $("$E2B" sandbox logs "$c" | sed -n 's/.*restored from .* in \([0-9]*\) ms.*/\1/p' | tail -n 1)000"
    "$E2B" sandbox kill -q "$c"
    rm -rf "$scratch/q" && mkdir -p "$scratch/q"
    set -- $(python3 "$scratch/qmp.py" restore "$scratch/cmdline" "$scratch/hand/vmstate" "$scratch/hand/disk.ext4" "$scratch/q")
    hrun="$hrun $1" hr="$hr $2"
done
r=$(median $r) rq=$(median $rq) hrun=$(median $hrun) hr=$(median $hr)
echo "restore, QEMU started to the guest's READY (stream loaded, RESUME: clock, envd's /init):"
echo "                                   e2b $(ms2 "$rq") ms (its supervisor's), by hand $(ms2 "$hr") ms (of which $(ms2 "$hrun") ms to running)   (e2b/hand: $(ratio "$rq" "$hr"); goal <= 1.2)"
echo "restore, all of it (CLI create -> envd answers): e2b $(ms2 "$r") ms   (e2b/hand: $(ratio "$r" "$hr"))"

# 3. fork
f=""
for i in $(seq "$N"); do
    t0=$(us); "$E2B" sandbox fork "$id" -n 3 --timeout 120 > "$scratch/forks"; t1=$(us)
    f="$f $((t1 - t0))"
    for k in $(cat "$scratch/forks"); do "$E2B" sandbox kill -q "$k"; done
done
echo "fork -n 3 (one snapshot, three restores at once): $(ms2 "$(median $f)") ms"

echo "ns runtime: measured against criu dump/restore by tests/bench/checkpoint.sh"
