#!/bin/sh
# bench/serve.sh - 50 concurrent SDK clients creating, exec'ing in and killing
# sandboxes through `e2b serve` on loopback for a bounded time; prints
# creates/s, p50/p99 create latency and errors, beside the same create done
# by the CLI directly (no server) in the same run; leaves no sandbox behind.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${E2B_BUILD_DIR:-$top/build}
E2B=$B/e2b
export E2B_ENVD=$B/envd
scratch=$(mktemp -d /tmp/e2b-bench-serve.XXXXXX)
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || :
    "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :
    left=$(ls "$E2B_RUNTIME_DIR/sandboxes" 2>/dev/null | wc -l)
    echo "sandboxes left behind: $left"
    rm -rf "$scratch"
}
trap cleanup EXIT
[ -d "$top/tests/sdk/node_modules/e2b" ] || (cd "$top/tests/sdk" && npm install --no-audit --no-fund >/dev/null)
key=$("$E2B" key create -q --name bench)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$E2B" serve -q --listen 127.0.0.1:$port &
pid=$!
sleep 0.5
t0=$(date +%s%N)
for i in 1 2 3 4 5 6 7 8 9 10; do id=$("$E2B" sandbox create -d host); "$E2B" sandbox kill -q "$id"; done
t1=$(date +%s%N)
echo "CLI create+kill without the server: $(( (t1 - t0) / 10000000 )) ms each"
cd "$top/tests/sdk"
E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port E2B_API_KEY=$key \
    CLIENTS=${CLIENTS:-50} SECONDS_RUN=${SECONDS_RUN:-20} \
    timeout 300 node "$top/tests/bench/serve-load.mjs"
