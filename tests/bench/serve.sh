#!/bin/sh
# bench/serve.sh - 50 concurrent SDK clients creating, exec'ing in and killing
# sandboxes through `e2b serve` on loopback; prints creates/s, p50/p99
# create latency and errors, in one run:
#   1. without warm sandboxes: each client loops create/exec/kill for a
#      bounded time, beside the same create done by the CLI directly (no
#      server);
#   2. the same with `--warm host=W` (W: CLIENTS by default): creates are
#      hand-outs of sandboxes started ahead while the pool lasts, refilled
#      in the background (goal: p99 create < 100 ms, 0 errors);
#   3. a burst: every client creates one sandbox at the same moment, with
#      and without the warm pool (full) (E2B's and CubeSandbox's figure:
#      "p99 at 50 concurrent creates"), beside the floor: the same clients
#      making the SDK's cheapest call (list) at once, which is what the
#      client itself costs on this machine.
# Fails when a client saw an error or when anything is left behind once
# the clients are done and the server stopped: state directories, cgroups,
# mounts or processes of the run, counted before the final clean-up (which
# only makes sure a failed run leaves nothing either).
#
#   CLIENTS=50 SECONDS_RUN=20 sh tests/bench/serve.sh      (as root, after make)
#   WARM=N: the pool's size (default CLIENTS).
#   BENCH_INTERNET=1: sandboxes get internet access (E2B's default; slirp4netns
#   per sandbox), else the server runs with --deny-internet, as loopback needs.
#   BENCH_TMPFS=1: the run's state directory on a tmpfs, as /run is on most
#   systems (on this one /run and /tmp are ext4, whose inode allocation for
#   the state files' churn shows in profiles).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${E2B_BUILD_DIR:-$top/build}
E2B=$B/e2b
export E2B_ENVD=$B/envd
scratch=$(mktemp -d /tmp/e2b-bench-serve.XXXXXX)
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data HOME=$scratch
unset E2B_API_URL E2B_API_KEY E2B_SANDBOX_URL E2B_DOMAIN
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || :
    "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :
    [ -z "${BENCH_TMPFS:-}" ] || umount "$E2B_RUNTIME_DIR" 2>/dev/null || :
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 141' PIPE
if [ -n "${BENCH_TMPFS:-}" ]; then
    mkdir -p "$E2B_RUNTIME_DIR" && mount -t tmpfs -o mode=0700,size=1g e2b-bench "$E2B_RUNTIME_DIR"
fi

# What sandboxes of this run hold: state dirs, cgroups, mounts, processes.
leftovers() {
    n=0
    for d in "$E2B_RUNTIME_DIR"/sandboxes/*/; do
        [ -d "$d" ] || continue
        echo "left: state dir $d" >&2; n=$((n + 1))
        id=$(basename "$d")
        for c in /sys/fs/cgroup/*/e2b/"$id" /sys/fs/cgroup/e2b/"$id"; do
            [ -e "$c" ] && { echo "left: cgroup $c" >&2; n=$((n + 1)); }
        done
    done
    m=$(grep -c "$E2B_RUNTIME_DIR/sandboxes" /proc/self/mountinfo || :)
    [ "$m" = 0 ] || { echo "left: $m mounts under $E2B_RUNTIME_DIR/sandboxes" >&2; n=$((n + m)); }
    for f in /proc/[0-9]*/cmdline; do
        c=$(tr '\0' ' ' 2>/dev/null < "$f") || continue
        case $c in *"$E2B_RUNTIME_DIR/sandboxes"*)
            echo "left: process ${f#/proc/}: $c" >&2; n=$((n + 1)) ;;
        esac
    done
    echo $n
}

[ -d "$top/tests/sdk/node_modules/e2b" ] || (cd "$top/tests/sdk" && npm install --no-audit --no-fund >/dev/null)
key=$("$E2B" key create -q --name bench)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
net=--deny-internet
[ -z "${BENCH_INTERNET:-}" ] || net=
clients=${CLIENTS:-50}
warm=${WARM:-$clients}
start_serve() { # [serve options]
    "$E2B" serve -q --listen 127.0.0.1:$port $net "$@" &
    pid=$!
    i=0
    until curl -sf -o /dev/null "http://127.0.0.1:$port/health"; do
        i=$((i + 1))
        [ $i -le 100 ] && kill -0 "$pid" 2>/dev/null || { echo "bench: e2b serve did not come up" >&2; exit 1; }
        sleep 0.05
    done
}
stop_serve() {
    kill "$pid" && wait "$pid" || :
    pid=
}
warm_ready() { # the pool full
    [ "$("$E2B" --api-url "" sandbox list --json | grep -c '"warmPool"')" -ge "$warm" ]
}
load() { # mode -> the clients' JSON
    (cd "$top/tests/sdk" && E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port E2B_API_KEY=$key \
        CLIENTS=$clients SECONDS_RUN=${SECONDS_RUN:-20} MODE=$1 timeout 300 node "$top/tests/bench/serve-load.mjs")
}
fill() {
    i=0
    until warm_ready; do
        i=$((i + 1))
        [ $i -le 1200 ] || { echo "bench: the warm pool did not fill" >&2; exit 1; }
        sleep 0.1
    done
}
errors=0
count_errors() { errors=$((errors + $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"])' "$1"))); }

echo "$(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg) before the run; $clients clients"
t0=$(date +%s%N)
for i in 1 2 3 4 5 6 7 8 9 10; do id=$("$E2B" sandbox create -d host); "$E2B" sandbox kill -q "$id"; done
t1=$(date +%s%N)
echo "CLI create+kill without the server: $(( (t1 - t0) / 10000000 )) ms each"

start_serve
echo "0. the client's floor: $clients SDK list calls at once (the cheapest API call, no sandbox):"
load floor > "$scratch/floor.json" && cat "$scratch/floor.json" && count_errors "$scratch/floor.json"
echo "1. loop, no warm sandboxes:"
load loop > "$scratch/cold.json" && cat "$scratch/cold.json" && count_errors "$scratch/cold.json"
echo "3. burst, no warm sandboxes:"
load burst > "$scratch/cold-burst.json" && cat "$scratch/cold-burst.json" && count_errors "$scratch/cold-burst.json"
stop_serve

start_serve --warm host=$warm
fill
echo "2. loop, --warm host=$warm (full at the start):"
load loop > "$scratch/warm.json" && cat "$scratch/warm.json" && count_errors "$scratch/warm.json"
fill
echo "3. burst, --warm host=$warm (full):"
load burst > "$scratch/warm-burst.json" && cat "$scratch/warm-burst.json" && count_errors "$scratch/warm-burst.json"
stop_serve
python3 - "$scratch" <<-\EOF
	import json, sys
	d = lambda n: json.load(open(f"{sys.argv[1]}/{n}.json"))
	for a, b, what in (("cold", "warm", "loop"), ("cold-burst", "warm-burst", "burst")):
	    c, w = d(a), d(b)
	    print(f"{what}: p50 {c['p50ms']} -> {w['p50ms']} ms, p99 {c['p99ms']} -> {w['p99ms']} ms, "
	          f"creates/s {c['createsPerSec']} -> {w['createsPerSec']} (without -> with --warm)")
	w, f = d("warm-burst"), d("floor")
	print(f"goal: p99 create < 100 ms with --warm ({w['clients']} at once): {w['p99ms']} ms: {'met' if float(w['p99ms']) < 100 else 'NOT met'}; "
	      f"the same client's p99 for its cheapest call at that concurrency: {f['p99ms']} ms (warm create/floor: {float(w['p99ms']) / float(f['p99ms']):.2f})")
	EOF
left=$(leftovers)
echo "sandboxes and resources left behind: $left"
[ "$errors" = 0 ] || { echo "bench: FAIL: $errors errors" >&2; exit 1; }
[ "$left" = 0 ] || { echo "bench: FAIL: $left things left behind" >&2; exit 1; }
