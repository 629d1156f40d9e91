#!/bin/sh
# run-code-interpreter.sh BUILD_DIR - the official @e2b/code-interpreter SDK
# (code-interpreter.test.mjs) against `e2b serve` and sandboxes of
# templates/code-interpreter, built as code-interpreter-v1 (the SDK's
# default template). Exit status: the tests'.
#
# The template is Debian 12 (tests/e2e/lib-image.sh's img_debian: a
# debootstrap made once a day) plus apt-get of python3-ipykernel, numpy,
# pandas, matplotlib and nodejs from Debian's mirrors: minutes when cold. So
# it is built in a store kept in $E2B_TEST_CACHE/code-interpreter (step
# cache included) under a lock, and not built again while the template's
# files and the base image are the same (a stamp beside it); the server
# then serves from that store. Builds need root: without it the run is
# skipped.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-$top/build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
e2b=$build/e2b
[ -x "$e2b" ] || { echo "run-code-interpreter.sh: no e2b binary in $build" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then
    echo "# run-code-interpreter.sh: SKIP (building templates/code-interpreter needs root)"
    exit 0
fi
cache=${E2B_TEST_CACHE:-/var/cache/e2b-tests}
store=$cache/code-interpreter
scratch=$(mktemp -d "${TMPDIR:-/tmp}/e2b-sdk-ci.XXXXXX")
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$store/data HOME=$scratch
export E2B_ENVD=${E2B_ENVD:-$build/envd}
pid= key_id=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    E2B_API_URL= "$e2b" sandbox kill --all -q 2>/dev/null
    [ -n "$key_id" ] && "$e2b" key revoke "$key_id" >/dev/null 2>&1
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -d "$here/node_modules/@e2b/code-interpreter" ]; then
    (cd "$here" && npm install --no-audit --no-fund >/dev/null) || { echo "run-code-interpreter.sh: npm install failed" >&2; exit 2; }
fi

# shellcheck source=../e2e/lib-image.sh
. "$top/tests/e2e/lib-image.sh"
t0=$(date +%s)
base=$(img_debian) || { echo "run-code-interpreter.sh: cannot make the Debian base image" >&2; exit 1; }
t1=$(date +%s)
mkdir -p "$store"
stamp=$( (cd "$top/templates/code-interpreter" && find . -type f | LC_ALL=C sort | xargs sha256sum;
    echo "$base") | sha256sum | cut -d' ' -f1)
(
    flock 9 || exit 1
    if [ "$(cat "$store/stamp" 2>/dev/null)" = "$stamp" ] &&
        "$e2b" template list --json 2>/dev/null | grep -q '"code-interpreter-v1"'; then
        echo "# code-interpreter-v1: up to date in $store"
        exit 0
    fi
    rm -f "$store/stamp"
    "$e2b" template build -q -n code-interpreter-v1 \
        --cmd '/run/e2b/envd code-interpreter' --ready-cmd 'curl -sf http://127.0.0.1:49999/health' \
        --build-arg BASE="oci:$base:bookworm" "$top/templates/code-interpreter" \
        >"$scratch/build.out" 2>"$scratch/build.err" ||
        { echo "run-code-interpreter.sh: cannot build templates/code-interpreter:" >&2; tail -n 30 "$scratch/build.err" >&2; exit 1; }
    echo "$stamp" > "$store/stamp"
) 9> "$store/.lock" || exit 1
t2=$(date +%s)
echo "# base image $((t1 - t0)) s, template $((t2 - t1)) s"

key=$("$e2b" key create --name "sdk-ci-$$" 2>"$scratch/key.err") || { cat "$scratch/key.err" >&2; exit 1; }
key_id=$(sed -n 's/^Created key \([a-z0-9]*\).*/\1/p' "$scratch/key.err")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$e2b" serve --listen 127.0.0.1:$port --deny-internet >"$scratch/serve.log" 2>&1 &
pid=$!
i=0
until curl -sf -o /dev/null http://127.0.0.1:$port/health; do
    i=$((i+1))
    if [ $i -gt 50 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "run-code-interpreter.sh: e2b serve did not come up" >&2; cat "$scratch/serve.log" >&2; exit 1
    fi
    sleep 0.1
done
cd "$here" && E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port E2B_API_KEY=$key \
    timeout 600 node --test --test-concurrency=1 --test-reporter=tap code-interpreter.test.mjs
rc=$?
if [ $rc != 0 ]; then
    echo "# serve log:"; sed 's/^/#   /' "$scratch/serve.log" | tail -n 30
    for d in "$E2B_RUNTIME_DIR"/sandboxes/*/; do
        [ -f "$d/sandbox.log" ] && { echo "# $d/sandbox.log:"; sed 's/^/#   /' "$d/sandbox.log" | tail -n 40; }
    done
fi
exit $rc
