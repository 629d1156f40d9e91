#!/bin/sh
# bench/vm.sh - VM sandboxes (the vm runtime, under the accelerator e2b
# picks: KVM where it can run the guest, else TCG), each figure beside its
# peer, in one run:
#   1. create -> first command output, cold boot, against bare QEMU booting
#      the same kernel and initramfs (its /init replaced by a busybox
#      script) to an `echo` on the console (goal: at most 1.2x);
#   2. create from the template's snapshot -> first output, against that
#      cold create (goal: at most 0.15x);
#   3. pause to disk, and resume from disk -> first output;
#   4. the exec round trip, against the ns runtime's;
#   5. 20 idle VMs: host memory per VM (PSS of QEMU and its supervisor),
#      and the CPU they use while idle (goal: the host stays idle).
# Needs root, qemu-system-x86_64, busybox and a guest kernel. BENCH_N runs
# per measure (5), BENCH_VMS idle VMs (20).
set -eu
B=${E2B_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
E2B=$B/e2b
export E2B_ENVD=$B/envd
N=${BENCH_N:-5}
VMS=${BENCH_VMS:-20}
command -v qemu-system-x86_64 >/dev/null || { echo "vm bench: no qemu-system-x86_64"; exit 0; }
command -v busybox >/dev/null || { echo "vm bench: no busybox"; exit 0; }
scratch=$(mktemp -d /tmp/e2b-bench-vm.XXXXXX)
run=$(mktemp -d /run/e2b-bench-vm.XXXXXX)
export E2B_RUNTIME_DIR=$run E2B_DATA_DIR=$scratch/data
cleanup() {
    "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :
    rm -rf "$scratch" "$run"
}
trap cleanup EXIT

us() { echo $(($(date +%s%N) / 1000)); }
ms2() { echo "scale=1; $1 / 1000" | bc; } # us -> ms
ratio() { echo "scale=2; $1 / $2" | bc; }
median() { echo "$@" | tr " " "\n" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
st() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s.get("vm", {}).get(sys.argv[2], s.get(sys.argv[2], "")))' \
    "$run/sandboxes/$1/state.json" "$2"; }

# The template: static busybox, twice: saved as a snapshot, and not.
ctx=$scratch/bb
mkdir -p "$ctx/root/bin" "$ctx/root/etc" "$ctx/root/tmp"
cp "$(command -v busybox)" "$ctx/root/bin/"
for a in $("$ctx/root/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$ctx/root/bin/$a"; done
printf "root:x:0:0:root:/root:/bin/sh\n" > "$ctx/root/etc/passwd"
printf "root:x:0:\n" > "$ctx/root/etc/group"
printf "FROM scratch\nCOPY root/ /\n" > "$ctx/e2b.Dockerfile"
"$E2B" template build -q -n bench-cold -p "$ctx" --runtime vm --no-snapshot >/dev/null 2>&1
t0=$(us)
"$E2B" template build -q -n bench-snap -p "$ctx" --runtime vm >/dev/null 2>&1
t1=$(us)

id=$("$E2B" sandbox create -d bench-cold --timeout 600)
accel=$(st "$id" accelerator)
echo "VM sandboxes ($accel; $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg); $N runs each, medians)"
echo "template build with its snapshot (boot, ready, save): $(( (t1 - t0) / 1000 )) ms"

# 1. bare QEMU: the same machine, kernel and initramfs, /init an echo
boot=$(st "$id" bootImage) initrd=$(st "$id" initramfs) khz=$(st "$id" tscKhz)
mem=$(st "$id" memoryMB) cpus=$(st "$id" cpuCount)
"$E2B" sandbox kill -q "$id"
mkdir -p "$scratch/echo/bin"
cp "$(command -v busybox)" "$scratch/echo/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox echo e2b-bench-echo\n/bin/busybox poweroff -f\n' > "$scratch/echo/init"
chmod 755 "$scratch/echo/init"
(cd "$scratch/echo" && find . | busybox cpio -o -H newc 2>/dev/null) > "$scratch/echo.cpio"
cat "$initrd" "$scratch/echo.cpio" > "$scratch/bare.cpio"
if [ "$accel" = kvm ]; then acc="-accel kvm -cpu host"; else acc="-accel tcg,tb-size=64 -cpu max"; fi
tsc=""; [ -z "$khz" ] || tsc=" tsc_early_khz=$khz"
cat > "$scratch/bare.py" <<-EOF
	import subprocess, sys, time
	t0 = time.monotonic()
	p = subprocess.Popen(["qemu-system-x86_64", "-M", "microvm,isa-serial=on", $(echo "$acc" | sed 's/\([^ ]*\)/"\1",/g')
	    "-m", "$mem", "-smp", "$cpus", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
	    "-kernel", "$boot", "-initrd", "$scratch/bare.cpio",
	    "-append", "console=ttyS0 quiet panic=-1 reboot=t$tsc 8250.nr_uarts=1 pci=off i8042.noaux i8042.nokbd no_timer_check tsc=reliable nowatchdog cryptomgr.notests random.trust_cpu=on",
	    "-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con"],
	    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
	buf = b""
	while b"e2b-bench-echo" not in buf:
	    c = p.stdout.read1(4096)
	    if not c:
	        sys.exit("no echo from the bare VM")
	    buf += c
	print(int((time.monotonic() - t0) * 1e6))
	p.kill()
	p.wait()
	EOF
bare="" cold="" snap=""
for i in $(seq "$N"); do bare="$bare $(python3 "$scratch/bare.py")"; done
bare=$(median $bare)
first_output() { # template -> us from create to the first exec's output
    t0=$(us)
    i=$("$E2B" sandbox create -d "$1" --timeout 600)
    "$E2B" sandbox exec "$i" "echo hi" >/dev/null
    t1=$(us)
    "$E2B" sandbox kill -q "$i"
    echo $((t1 - t0))
}
for i in $(seq "$N"); do cold="$cold $(first_output bench-cold)"; snap="$snap $(first_output bench-snap)"; done
cold=$(median $cold) snap=$(median $snap)
echo "bare QEMU, same kernel and initramfs, to an echo:  $(ms2 "$bare") ms"
echo "create (cold boot) -> first output:                $(ms2 "$cold") ms   (e2b/bare QEMU: $(ratio "$cold" "$bare"); goal <= 1.2)"
echo "create from the template's snapshot -> output:     $(ms2 "$snap") ms   (snapshot/cold: $(ratio "$snap" "$cold"); goal <= 0.15)"

# 3. pause to disk, resume from disk
id=$("$E2B" sandbox create -d bench-snap --timeout 600)
"$E2B" sandbox exec "$id" "head -c 50000000 /dev/urandom > /tmp/data" # something of its own to save
p="" r=""
for i in $(seq "$N"); do
    t0=$(us); "$E2B" sandbox pause "$id" >/dev/null 2>&1; t1=$(us)
    "$E2B" sandbox resume "$id" >/dev/null 2>&1; "$E2B" sandbox exec "$id" "echo hi" >/dev/null; t2=$(us)
    p="$p $((t1 - t0))" r="$r $((t2 - t1))"
done
echo "pause to disk (VM with 50 MB of its own):          $(ms2 "$(median $p)") ms"
echo "resume from disk -> first output:                  $(ms2 "$(median $r)") ms"

# 4. exec round trip, VM and ns
t0=$(us); for i in $(seq 20); do "$E2B" sandbox exec "$id" true; done; t1=$(us)
vmrt=$(( (t1 - t0) / 20 ))
"$E2B" sandbox kill -q "$id"
ns=$("$E2B" sandbox create -d host --runtime ns --timeout 600)
t0=$(us); for i in $(seq 20); do "$E2B" sandbox exec "$ns" true; done; t1=$(us)
nsrt=$(( (t1 - t0) / 20 ))
"$E2B" sandbox kill -q "$ns"
echo "exec round trip of true, VM:                       $(ms2 "$vmrt") ms   (VM/ns: $(ratio "$vmrt" "$nsrt"))"
echo "exec round trip of true, ns:                       $(ms2 "$nsrt") ms"

# 5. idle VMs
ids=""
t0=$(us)
for i in $(seq "$VMS"); do ids="$ids $("$E2B" sandbox create -d bench-snap --timeout 1200)"; done
t1=$(us)
echo "$VMS VMs from the snapshot created in $(( (t1 - t0) / 1000 )) ms"
sleep 5 # settle: the first moments after a restore are not idle
pids=""
for i in $ids; do pids="$pids $(st "$i" initPid) $(st "$i" supervisorPid)"; done
pss=0 qpss=0
for p in $pids; do
    v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    pss=$((pss + ${v:-0}))
done
for i in $ids; do
    q=$(st "$i" initPid)
    v=$(awk '/^Pss:/{print $2}' "/proc/$q/smaps_rollup" 2>/dev/null || echo 0)
    qpss=$((qpss + ${v:-0}))
done
echo "idle VM memory on the host: PSS of QEMU and supervisor $(echo "scale=1; $pss / $VMS / 1024" | bc) MiB per VM (QEMU alone $(echo "scale=1; $qpss / $VMS / 1024" | bc) MiB), $VMS VMs of $mem MiB each"
cpu_ticks() { # utime+stime of the pids, in clock ticks
    t=0
    for p in $pids; do
        v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo $t
}
idle_all() { awk '/^cpu /{print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
a=$(cpu_ticks) set -- $(idle_all); i0=$1 all0=$2
sleep 10
b=$(cpu_ticks) set -- $(idle_all); i1=$1 all1=$2
hz=$(getconf CLK_TCK)
echo "idle CPU of $VMS VMs (QEMU and supervisors) over 10 s: $(echo "scale=2; ($b - $a) * 100 / $hz / 10" | bc)% of one CPU in all; the host was $(echo "scale=1; ($i1 - $i0) * 100 / ($all1 - $all0)" | bc)% idle (others' work included)"
t0=$(us)
"$E2B" sandbox kill --all -q
t1=$(us)
echo "killing $VMS VMs took $(( (t1 - t0) / 1000 )) ms"
