#!/bin/sh
# run-serve.sh BUILD_DIR - start `e2b serve` on a free loopback port with a
# fresh key and scratch state, run the official SDK against it, then stop
# it; every sandbox it made is killed. Exit status: the tests'.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
e2b=$build/e2b
[ -x "$e2b" ] || { echo "run-serve.sh: no e2b binary in $build" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP local sandboxes need root"; exit 0; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/e2b-sdk-serve.XXXXXX")
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data HOME=$scratch
export E2B_ENVD=${E2B_ENVD:-$build/envd}
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    E2B_API_URL= "$e2b" sandbox kill --all -q 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -d "$here/node_modules/e2b" ]; then
    (cd "$here" && npm install --no-audit --no-fund >/dev/null) || { echo "run-serve.sh: npm install failed" >&2; exit 2; }
fi
key=$("$e2b" key create --name sdk-tests) || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$e2b" serve --listen 127.0.0.1:$port >"$scratch/serve.log" 2>&1 &
pid=$!
i=0
until curl -sf -o /dev/null http://127.0.0.1:$port/health; do
    i=$((i+1))
    if [ $i -gt 50 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "run-serve.sh: e2b serve did not come up" >&2; cat "$scratch/serve.log" >&2; exit 1
    fi
    sleep 0.1
done
cd "$here" && E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port E2B_API_KEY=$key \
    timeout 300 node --test --test-concurrency=1 --test-reporter=tap serve.test.mjs
rc=$?
[ $rc = 0 ] || { echo "# serve log:"; sed 's/^/#   /' "$scratch/serve.log" | tail -n 30; }
exit $rc
