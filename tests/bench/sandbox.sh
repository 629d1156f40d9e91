#!/bin/sh
# bench/sandbox.sh - local sandboxes beside peers, in one run:
#   1. start-to-first-output: `e2b sandbox create -d host` + exec of `true`,
#      beside `bwrap --unshare-all ... true` and `crun run` of a root with the
#      same programs, and plain fork+exec of `true`;
#   2. exec round trip in a running sandbox;
#   3. idle memory per sandbox (supervisor + init + envd, PSS);
#   4. how many idle sandboxes start before create slows down (bounded).
# Needs root. Peers are installed by tools/deps.sh bench.
set -eu
B=${E2B_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
E2B=$B/e2b
export E2B_ENVD=$B/envd
N=${BENCH_N:-20}
MANY=${BENCH_MANY:-200}
scratch=$(mktemp -d /tmp/e2b-bench.XXXXXX)
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data
cleanup() { "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :; rm -rf "$scratch"; }
trap cleanup EXIT

ms() { echo $(($(date +%s%N) / 1000000)); }
per() { echo "scale=2; $1 / $N" | bc; }

t0=$(ms); for i in $(seq $N); do /bin/true; done; t1=$(ms)
base=$(per $((t1 - t0)))
echo "fork+exec of true:              $base ms"

total=0
for i in $(seq $N); do
    t0=$(ms)
    id=$("$E2B" sandbox create -d host --timeout 60)
    "$E2B" sandbox exec "$id" true
    t1=$(ms)
    total=$((total + t1 - t0))
    "$E2B" sandbox kill -q "$id" # not timed: the comparison is start to first output
done
ours=$(per $total)
echo "e2b create + first exec:        $ours ms"

if command -v bwrap >/dev/null; then
    t0=$(ms)
    for i in $(seq $N); do
        bwrap --unshare-all --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
            --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp /bin/true
    done
    t1=$(ms)
    bw=$(per $((t1 - t0)))
    echo "bwrap --unshare-all true:       $bw ms   (e2b/bwrap: $(echo "scale=2; $ours / $bw" | bc))"
else
    echo "bwrap: not installed (tools/deps.sh bench)"
fi

if command -v crun >/dev/null; then
    mkdir -p "$scratch/crun/rootfs"
    (cd "$scratch/crun" && crun spec >/dev/null && \
        python3 - <<-\PY
	import json
	s = json.load(open("config.json"))
	s["process"]["args"] = ["/bin/true"]
	s["process"]["terminal"] = False
	s["root"]["readonly"] = True
	s["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]})
	json.dump(s, open("config.json", "w"))
	PY
    )
    for l in bin lib lib64 sbin; do ln -s usr/$l "$scratch/crun/rootfs/$l"; done
    mkdir -p "$scratch/crun/rootfs/usr"
    t0=$(ms)
    ok=1
    for i in $(seq $N); do
        crun --cgroup-manager=disabled run --bundle "$scratch/crun" "bench$i" >/dev/null 2>"$scratch/crun.err" || { ok=0; break; }
    done
    t1=$(ms)
    if [ $ok = 1 ]; then
        cr=$(per $((t1 - t0)))
        echo "crun run true:                  $cr ms   (e2b/crun: $(echo "scale=2; $ours / $cr" | bc))"
    else
        echo "crun run true:                  cannot run here: $(head -1 "$scratch/crun.err")"
    fi
else
    echo "crun: not installed (tools/deps.sh bench)"
fi

id=$("$E2B" sandbox create -d host --timeout 300)
t0=$(ms); for i in $(seq $N); do "$E2B" sandbox exec "$id" true; done; t1=$(ms)
rt=$(per $((t1 - t0)))
echo "exec round trip of true:        $rt ms   (e2b/fork+exec: $(echo "scale=2; $rt / $base" | bc))"

sup=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['supervisorPid'])" "$E2B_RUNTIME_DIR/sandboxes/$id/state.json")
pss=0
for p in $sup $(cat /sys/fs/cgroup/pids/e2b/$id/cgroup.procs /sys/fs/cgroup/e2b/$id/cgroup.procs 2>/dev/null); do
    v=$(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0)
    pss=$((pss + v))
done
echo "idle memory per sandbox (PSS of supervisor+init+envd): $((pss / 1024)) MiB ($pss KiB)"
"$E2B" sandbox kill -q "$id"

echo "many idle sandboxes (up to $MANY):"
first=0
i=0
while [ $i -lt "$MANY" ]; do
    t0=$(ms)
    "$E2B" sandbox create -d host --timeout 600 >/dev/null || { echo "  create failed at $i"; break; }
    t1=$(ms)
    i=$((i + 1))
    [ $first = 0 ] && first=$((t1 - t0))
    if [ $((i % 50)) = 0 ]; then
        echo "  $i running: create took $((t1 - t0)) ms (first: $first ms), free memory $(awk '/MemAvailable/{print int($2/1024)}' /proc/meminfo) MiB"
    fi
done
