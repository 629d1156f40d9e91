#!/bin/sh
# bench/sandbox.sh - local sandboxes beside peers, in one run:
#   1. start to first output: `e2b sandbox create -d host` + exec of `true`,
#      beside `bwrap --unshare-all ... true` and `crun run` of a root with the
#      same programs (crun with cgroups, as ours), and plain fork+exec;
#   2. exec round trip in a running sandbox, beside `crun exec`;
#   3. idle memory per sandbox: PSS of supervisor + init + envd, and what the
#      sandbox's memory cgroup holds (kernel and tmpfs memory too), goal 4 MiB;
#   4. density: up to BENCH_MANY (500) idle sandboxes, where create slows down
#      (the median of the last ten creates over twice the first ten's) and
#      the memory at each step.
# Needs root. Peers are installed by tools/deps.sh bench. BENCH_N runs per
# measure (20). The runtime dir is on /run (tmpfs), as e2b's default is.
set -eu
B=${E2B_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
E2B=$B/e2b
export E2B_ENVD=$B/envd
N=${BENCH_N:-20}
MANY=${BENCH_MANY:-500}
scratch=$(mktemp -d /tmp/e2b-bench.XXXXXX)
run=$(mktemp -d /run/e2b-bench.XXXXXX)
export E2B_RUNTIME_DIR=$run E2B_DATA_DIR=$scratch/data
cleanup() {
    "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :
    if [ -n "${crun_ns:-}" ]; then kill "$crun_ns" 2>/dev/null || :; fi
    rm -rf "$scratch" "$run"
}
trap cleanup EXIT

ms() { echo $(($(date +%s%N) / 1000000)); }
us() { echo $(($(date +%s%N) / 1000)); }
per() { echo "scale=2; $1 / $N / 1000" | bc; } # total us -> ms per run
ratio() { echo "scale=2; $1 / $2" | bc; }

echo "e2b sandboxes beside peers ($N runs each; $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"

t0=$(us); for i in $(seq $N); do /bin/true; done; t1=$(us)
base=$(per $((t1 - t0)))
echo "fork+exec of true:                 $base ms"

total=0
for i in $(seq $N); do
    t0=$(us)
    id=$("$E2B" sandbox create -d host --timeout 60)
    "$E2B" sandbox exec "$id" true
    t1=$(us)
    total=$((total + t1 - t0))
    "$E2B" sandbox kill -q "$id" # not timed: the comparison is start to first output
    sleep 0.1 # one at a time, as crun below (see there)
done
ours=$(per $total)
echo "e2b create + first exec:           $ours ms"

if command -v bwrap >/dev/null; then
    t0=$(us)
    for i in $(seq $N); do
        bwrap --unshare-all --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
            --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp /bin/true
    done
    t1=$(us)
    bw=$(per $((t1 - t0)))
    echo "bwrap --unshare-all true:          $bw ms   (e2b/bwrap: $(ratio "$ours" "$bw"))"
else
    echo "bwrap: not installed (tools/deps.sh bench)"
fi

# crun refuses the hybrid cgroup layout here (a cgroup2 mount at
# /sys/fs/cgroup/unified): it runs in a mount namespace of its own without it.
crun_sh() { unshare -m sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; $1"; }
if command -v crun >/dev/null && command -v unshare >/dev/null; then
    b=$scratch/crun
    mkdir -p "$b/rootfs/usr" "$b/rootfs/tmp"
    for l in bin lib lib64 sbin; do ln -s usr/$l "$b/rootfs/$l"; done
    (cd "$b" && crun spec >/dev/null && python3 - <<-\PY
	import json
	s = json.load(open("config.json"))
	s["process"]["args"] = ["/bin/true"]
	s["process"]["terminal"] = False
	s["root"]["readonly"] = True
	s["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]})
	s["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]})
	s["linux"]["resources"] = {"memory": {"limit": 1073741824}, "pids": {"limit": 4096}}
	json.dump(s, open("config.json", "w"))
	PY
    )
    # Timed inside the namespace: the unshare itself is not crun's cost.
    # Moving a task into a cgroup waits for an RCU grace period (8-13 ms
    # here), unless another move came within the last one: back to back,
    # each run rides on the one before and pays nothing. So each run is
    # timed alone, 0.1 s after the last, as a user's create is; the back to
    # back figure is shown too.
    cr=$(crun_sh "total=0; for i in \$(seq $N); do t0=\$(date +%s%N)
            crun --cgroup-manager=cgroupfs run --bundle $b bench\$i >/dev/null 2>$scratch/crun.err || exit 1
            t1=\$(date +%s%N); total=\$(( total + (t1 - t0) / 1000 )); sleep 0.1
        done; echo \$total") || cr=
    crb=$(crun_sh "t0=\$(date +%s%N); for i in \$(seq $N); do
            crun --cgroup-manager=cgroupfs run --bundle $b burst\$i >/dev/null 2>$scratch/crun.err || exit 1
        done; t1=\$(date +%s%N); echo \$(( (t1 - t0) / 1000 ))") || crb=
    if [ -n "$cr" ]; then
        cr=$(per "$cr")
        echo "crun run true (with cgroups):      $cr ms   (e2b/crun: $(ratio "$ours" "$cr"))"
        [ -z "$crb" ] || echo "  crun back to back:               $(per "$crb") ms   (grace periods shared)"
    else
        echo "crun run true:                     cannot run here: $(head -1 "$scratch/crun.err")"
    fi
else
    echo "crun: not installed (tools/deps.sh bench)"
fi

id=$("$E2B" sandbox create -d host --timeout 600)
t0=$(us); for i in $(seq $N); do "$E2B" sandbox exec "$id" true; done; t1=$(us)
rt=$(per $((t1 - t0)))
echo "exec round trip of true:           $rt ms   (e2b/fork+exec: $(ratio "$rt" "$base"))"
if [ -n "${cr:-}" ]; then
    python3 - "$b/config.json" <<-\PY
	import json, sys
	s = json.load(open(sys.argv[1])); s["process"]["args"] = ["/bin/sleep", "600"]
	json.dump(s, open(sys.argv[1], "w"))
	PY
    ce=$(crun_sh "crun --cgroup-manager=cgroupfs run -d --bundle $b benchx >/dev/null 2>$scratch/crun.err || exit 1
        t0=\$(date +%s%N); for i in \$(seq $N); do crun exec benchx /bin/true || exit 1; done; t1=\$(date +%s%N)
        crun kill benchx KILL; sleep 0.2; crun delete -f benchx; echo \$(( (t1 - t0) / 1000 ))") || ce=
    if [ -n "$ce" ]; then
        ce=$(per "$ce")
        echo "crun exec true:                    $ce ms   (e2b/crun: $(ratio "$rt" "$ce"))"
    else
        echo "crun exec:                         cannot run here: $(head -1 "$scratch/crun.err")"
    fi
fi
"$E2B" sandbox kill -q "$id"

# Memory of each sandbox in $run: PSS of its three processes, its memory cgroup.
state_pid() { sed -n "s/^ *\"$2\": *\([0-9]*\).*/\1/p" "$run/sandboxes/$1/state.json"; }
sandbox_kib() { # id -> "pss_kib memcg_kib"
    sup=$(state_pid "$1" supervisorPid) init=$(state_pid "$1" initPid)
    envd=$(cut -d' ' -f1 "/proc/$init/task/$init/children" 2>/dev/null || :)
    pss=0
    for p in $sup $init $envd; do
        v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        pss=$((pss + ${v:-0}))
    done
    cg=$(cat "/sys/fs/cgroup/memory/e2b/$1/memory.usage_in_bytes" "/sys/fs/cgroup/e2b/$1/memory.current" 2>/dev/null | head -1)
    echo "$pss $((${cg:-0} / 1024))"
}
memory_line() { # label
    label=$1 n=0 pss=0 cg=0
    for d in "$run"/sandboxes/*/; do
        set -- $(sandbox_kib "$(basename "$d")")
        n=$((n + 1)) pss=$((pss + $1)) cg=$((cg + $2))
    done
    [ $n -gt 0 ] || return 0
    echo "$label: PSS of supervisor+init+envd $(echo "scale=2; $pss / $n / 1024" | bc) MiB, memory cgroup $(echo "scale=2; $cg / $n / 1024" | bc) MiB, sum $(echo "scale=2; ($pss + $cg) / $n / 1024" | bc) MiB per sandbox (goal: under 4 MiB)"
}

echo "many idle sandboxes (up to $MANY; stops early below 2 GiB available):"
avail() { awk '/MemAvailable/{print int($2/1024)}' /proc/meminfo; }
mem0=$(avail)
i=0 first="" slow="" times=""
median() { echo "$@" | tr " " "\n" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
while [ $i -lt "$MANY" ]; do
    [ "$(avail)" -gt 2048 ] || { echo "  stopped at $i: under 2 GiB available"; break; }
    t0=$(us)
    "$E2B" sandbox create -d host --timeout 1800 >/dev/null 2>"$scratch/create.err" ||
        { echo "  create failed at $i: $(head -1 "$scratch/create.err")"; break; }
    t1=$(us)
    i=$((i + 1))
    dt=$(( (t1 - t0) / 1000 ))
    times="$times $dt"
    if [ $i -le 10 ]; then
        [ $i = 10 ] && first=$(median $times)
    else
        # a slow create can be noise (a sync, another job): it counts when
        # the median of the last ten is over twice the first ten's
        times=$(echo $times | cut -d" " -f2-)
        m=$(median $times)
        [ -n "$slow" ] || [ "$m" -le $((2 * first)) ] || {
            slow=$i
            echo "  create slows down at $slow: the last ten took $m ms (median; the first ten: $first ms)"
        }
    fi
    if [ $((i % 100)) = 0 ] || [ $i = 50 ]; then
        echo "  $i running: creates take $(median $times) ms (median of the last ten; the first ten: $first ms), $(( (mem0 - $(avail)) / i * 1024 )) KiB used per sandbox on the host"
        [ $i = 50 ] && memory_line "  idle memory at 50"
    fi
done
memory_line "  idle memory at $i"
[ -n "$slow" ] || echo "  create did not slow down (the median of ten over twice the first ten's) up to $i"
t0=$(ms)
"$E2B" sandbox kill --all -q
t1=$(ms)
echo "  killing $i took $((t1 - t0)) ms ($(echo "scale=2; ($t1 - $t0) / $i" | bc) ms each)"
