#!/bin/sh
# run-envd.sh [ENVD] - start envd on 127.0.0.1:49983 in a scratch dir, run the
# SDK tests against it (E2B_DEBUG=true), stop envd. Exit status: the tests'.
set -u
here=$(cd "$(dirname "$0")" && pwd)
envd=${1:-${E2B_ENVD:-$here/../../build/envd}}
case $envd in /*) ;; *) envd=$(pwd)/$envd ;; esac
[ -x "$envd" ] || { echo "run-envd.sh: no envd binary at $envd" >&2; exit 2; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/e2b-sdk.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && { i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -9 "$pid" 2>/dev/null; }
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -d "$here/node_modules/e2b" ]; then
    (cd "$here" && npm install --no-audit --no-fund >/dev/null) || { echo "run-envd.sh: npm install failed" >&2; exit 2; }
fi
(cd "$scratch" && exec "$envd" --listen 127.0.0.1:49983 ${E2B_ENVD_ARGS:-}) >"$scratch/envd.log" 2>&1 &
pid=$!
i=0
until curl -sf -o /dev/null http://127.0.0.1:49983/health; do
    i=$((i+1))
    if [ $i -gt 50 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "run-envd.sh: envd did not come up" >&2; cat "$scratch/envd.log" >&2; exit 1
    fi
    sleep 0.1
done
cd "$here" && E2B_DEBUG=true E2B_SDK_SCRATCH="$scratch" timeout 300 node --test --test-concurrency=1 --test-reporter=tap envd.test.mjs
rc=$?
[ $rc = 0 ] || { echo "# envd log:"; sed 's/^/#   /' "$scratch/envd.log" | tail -n 30; }
exit $rc
