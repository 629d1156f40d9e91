#!/bin/sh
# bench/checkpoint.sh - the ns runtime's checkpoints (CRIU) beside CRIU run
# by hand on the same workload, in one run:
#   1. snapshot of a running sandbox (`e2b sandbox snapshot create`: pause,
#      envd's host connections dropped, the writable layer, `criu dump
#      --leave-running`, resume, the snapshot store) against `criu dump
#      --leave-running` by hand of the same Python counter in pid, net, ipc
#      and uts namespaces of its own (goal: at most 1.2x);
#   2. a new sandbox from it (`e2b sandbox create SNAPSHOT`, returning once
#      its envd took the new sandbox's settings) against `criu restore -d`
#      by hand of that dump (goal: at most 1.2x);
#   3. pause --to-disk and resume.
# Needs root and a criu that can checkpoint here (tools/criu.sh). BENCH_N
# runs per measure (5); medians.
set -eu
B=${E2B_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
E2B=$B/e2b
export E2B_ENVD=$B/envd
N=${BENCH_N:-5}
[ "$(id -u)" = 0 ] || { echo "checkpoint bench: needs root"; exit 0; }
criu check >/dev/null 2>&1 || { echo "checkpoint bench: no criu that works here (tools/criu.sh)"; exit 0; }
scratch=$(mktemp -d /tmp/e2b-bench-ckpt.XXXXXX)
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data
peer= p=
cleanup() {
    "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :
    [ -z "$p" ] || kill -9 "$p" 2>/dev/null || : # the counter: pid 1 of its namespace
    [ -z "$peer" ] || kill -9 "$peer" 2>/dev/null || :
    for f in "$scratch"/restored.*; do [ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
    rm -rf "$scratch"
}
trap cleanup EXIT

us() { echo $(($(date +%s%N) / 1000)); }
ms() { echo "scale=1; $1 / 1000" | bc; } # us -> ms
ratio() { echo "scale=2; $1 / $2" | bc; }
median() { echo "$@" | tr " " "\n" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

# The workload: a Python process counting in its memory.
cat > "$scratch/counter.py" <<'EOF'
import time
n = 0
while True:
    n += 1
    time.sleep(0.05)
EOF

echo "ns checkpoints with $(criu --version | head -n 1 | sed 's/Version: /CRIU /') ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg); $N runs each, medians)"

# Ours: a sandbox from `host` running the counter.
id=$("$E2B" sandbox create -d host --timeout 600)
"$E2B" sandbox files write "$id" /tmp/counter.py < "$scratch/counter.py"
"$E2B" sandbox exec "$id" "(python3 /tmp/counter.py </dev/null >/dev/null 2>&1 &)"
snap_us="" restore_us="" snap=""
for i in $(seq "$N"); do
    t0=$(us)
    snap=$("$E2B" sandbox snapshot create "$id")
    t1=$(us)
    new=$("$E2B" sandbox create -d "$snap" --timeout 600)
    t2=$(us)
    "$E2B" sandbox kill -q "$new"
    "$E2B" sandbox snapshot rm -q "$snap"
    snap_us="$snap_us $((t1 - t0))" restore_us="$restore_us $((t2 - t1))"
done

# The peer: the same counter in namespaces of its own, CRIU by hand.
unshare --pid --net --ipc --uts --fork --kill-child setsid python3 "$scratch/counter.py" </dev/null >/dev/null 2>&1 &
peer=$!
for _ in $(seq 100); do
    p=$(pgrep -P "$peer" python3 || :)
    [ -n "$p" ] && break
    sleep 0.05
done
[ -n "$p" ] || { echo "checkpoint bench: the peer's counter did not start"; exit 1; }
dump_us="" crestore_us=""
for i in $(seq "$N"); do
    d=$scratch/peer-$i
    mkdir -p "$d"
    t0=$(us)
    criu dump -t "$p" -D "$d" --leave-running --network-lock skip -o dump.log
    t1=$(us)
    criu restore -D "$d" -d --pidfile "$scratch/restored.$i" -o restore.log
    t2=$(us)
    kill -9 "$(cat "$scratch/restored.$i")"
    dump_us="$dump_us $((t1 - t0))" crestore_us="$crestore_us $((t2 - t1))"
done

s=$(median $snap_us) r=$(median $restore_us) cd=$(median $dump_us) cr=$(median $crestore_us)
echo "snapshot of a running sandbox: $(ms "$s") ms; criu dump by hand: $(ms "$cd") ms; ratio $(ratio "$s" "$cd") (goal <= 1.2)"
echo "a new sandbox from it (envd answering): $(ms "$r") ms; criu restore by hand: $(ms "$cr") ms; ratio $(ratio "$r" "$cr") (goal <= 1.2)"

# 3. pause to disk and back
pause_us="" resume_us=""
for i in $(seq "$N"); do
    t0=$(us)
    "$E2B" sandbox pause -q --to-disk "$id"
    t1=$(us)
    "$E2B" sandbox resume -q "$id"
    t2=$(us)
    pause_us="$pause_us $((t1 - t0))" resume_us="$resume_us $((t2 - t1))"
done
echo "pause --to-disk: $(ms "$(median $pause_us)") ms; resume from disk: $(ms "$(median $resume_us)") ms"
