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
# Root or not: unprivileged sandboxes (user namespaces) serve the SDK too.
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
trap 'exit 141' PIPE # its output piped into a pager that quit: clean up all the same

if [ ! -d "$here/node_modules/e2b" ]; then
    (cd "$here" && npm install --no-audit --no-fund >/dev/null) || { echo "run-serve.sh: npm install failed" >&2; exit 2; }
fi
key=$("$e2b" key create --name sdk-tests) || exit 1
# A template in the store (the host's dash as /bin/sh, nothing else), for
# creating by alias and by ID; its ID goes to the tests. Builds need root.
ctx=$scratch/tiny
tiny_id=
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$ctx/root/bin" "$ctx/root/etc" && cp /bin/dash "$ctx/root/bin/sh" &&
        for l in $(ldd /bin/dash | grep -o "/[^ ]*"); do mkdir -p "$ctx/root$(dirname "$l")" && cp "$l" "$ctx/root$l"; done &&
        printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ctx/root/etc/passwd" && printf 'root:x:0:\n' > "$ctx/root/etc/group" &&
        printf 'FROM scratch\nCOPY root/ /\n' > "$ctx/e2b.Dockerfile" &&
        "$e2b" template build -q -n sdk-tiny -p "$ctx" >"$scratch/build.out" 2>"$scratch/build.err" &&
        tiny_id=$(tail -n 1 "$scratch/build.out") && [ -n "$tiny_id" ] ||
        { echo "run-serve.sh: cannot build the tiny template:" >&2; cat "$scratch/build.err" >&2; exit 1; }
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# No sandbox of the tests needs the internet (E2B's default would give it).
# Two `host` sandboxes kept warm: the suite's creates of host are hand-outs
# of those (serve-warm.h), which it must not be able to tell from new ones.
"$e2b" serve --listen 127.0.0.1:$port --deny-internet --warm host=2 >"$scratch/serve.log" 2>&1 &
pid=$!
i=0
until curl -sf -o /dev/null http://127.0.0.1:$port/health; do
    i=$((i+1))
    if [ $i -gt 50 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "run-serve.sh: e2b serve did not come up" >&2; cat "$scratch/serve.log" >&2; exit 1
    fi
    sleep 0.1
done
i=0
until [ "$(E2B_API_URL= "$e2b" sandbox list --json | grep -c '"warmPool"')" = 2 ]; do
    i=$((i+1))
    [ $i -le 100 ] || { echo "run-serve.sh: the warm pool did not fill" >&2; cat "$scratch/serve.log" >&2; exit 1; }
    sleep 0.1
done
cd "$here" && E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port E2B_API_KEY=$key \
    SDK_TINY_TEMPLATE_ID=$tiny_id \
    timeout 300 node --test --test-concurrency=1 --test-reporter=tap serve.test.mjs
rc=$?
[ $rc = 0 ] || { echo "# serve log:"; sed 's/^/#   /' "$scratch/serve.log" | tail -n 30; }
exit $rc
