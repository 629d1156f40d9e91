#!/bin/sh
# run-volumes.sh BUILD_DIR - volumes through the official SDK against
# `e2b serve`, across a restart of the server: volumes.test.mjs phase 1 on
# one server, phase 2 on a new one over the same state. Exit status: the
# tests'.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
e2b=$build/e2b
[ -x "$e2b" ] || { echo "run-volumes.sh: no e2b binary in $build" >&2; exit 2; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/e2b-sdk-volumes.XXXXXX")
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data HOME=$scratch
export E2B_ENVD=${E2B_ENVD:-$build/envd}
pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
cleanup() {
    stop
    E2B_API_URL= "$e2b" sandbox kill --all -q 2>/dev/null
    for v in $(E2B_API_URL= "$e2b" volume list --json 2>/dev/null | python3 -c 'import json,sys; [print(v["volumeID"]) for v in json.load(sys.stdin)]' 2>/dev/null); do
        E2B_API_URL= "$e2b" volume rm -q "$v" 2>/dev/null
    done
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -d "$here/node_modules/e2b" ]; then
    (cd "$here" && npm install --no-audit --no-fund >/dev/null) || { echo "run-volumes.sh: npm install failed" >&2; exit 2; }
fi
key=$("$e2b" key create --name sdk-volumes) || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start() {
    "$e2b" serve --listen 127.0.0.1:$port --deny-internet >>"$scratch/serve.log" 2>&1 &
    pid=$!
    i=0
    until curl -sf -o /dev/null http://127.0.0.1:$port/health; do
        i=$((i+1))
        if [ $i -gt 50 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "run-volumes.sh: e2b serve did not come up" >&2; cat "$scratch/serve.log" >&2; exit 1
        fi
        sleep 0.1
    done
}
phase() {
    (cd "$here" && E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port \
        E2B_VOLUME_API_URL=http://127.0.0.1:$port E2B_API_KEY=$key \
        SDK_VOLUMES_PHASE=$1 SDK_VOLUMES_STATE=$scratch/volume.json \
        timeout 300 node --test --test-concurrency=1 --test-reporter=tap volumes.test.mjs)
}
start
phase 1
rc=$?
stop
if [ $rc = 0 ]; then
    start
    phase 2
    rc=$?
fi
[ $rc = 0 ] || { echo "# serve log:"; sed 's/^/#   /' "$scratch/serve.log" | tail -n 30; }
exit $rc
