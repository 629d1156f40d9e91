#!/bin/sh
# run-envd.sh [ENVD] - run the official SDK's tests (envd.test.mjs, E2B_DEBUG=true)
# against OUR envd on 127.0.0.1:49983, then stop it. Exit status: the tests'.
#
# The SDK's debug mode always talks to port 49983, which other sessions on
# the machine may use too. So envd and node run in a private network
# namespace (unshare -n, loopback up) where that port is ours; without the
# privilege for one (unshare -rn as a last try), the run checks that the
# envd that answers /health is the one it started. The same unshare gives
# a private mount namespace, where /etc/passwd (a bind-mounted copy) puts
# root's home in the scratch dir: the SDK runs every command as `bash -l`,
# and the machine's /root dotfiles (a pyenv rehash waiting up to 60 s on a
# lock a killed shell left) must not decide the tests. On a failure it
# prints the whole envd log (requests logged with -v) after the TAP output.
set -u
here=$(cd "$(dirname "$0")" && pwd)
envd=${1:-${E2B_ENVD:-$here/../../build/envd}}
case $envd in /*) ;; *) envd=$(pwd)/$envd ;; esac
[ -x "$envd" ] || { echo "run-envd.sh: no envd binary at $envd" >&2; exit 2; }

if [ -z "${E2B_SDK_IN_NETNS:-}" ]; then
    # Outside: install the SDK (needs the network), then enter the namespace.
    if [ ! -d "$here/node_modules/e2b" ]; then
        (cd "$here" && npm install --no-audit --no-fund >/dev/null) || { echo "run-envd.sh: npm install failed" >&2; exit 2; }
    fi
    for how in "-nm" "-rnm"; do
        if unshare $how true 2>/dev/null; then
            export E2B_SDK_IN_NETNS=$how
            exec unshare $how sh "$0" "$envd"
        fi
    done
    echo "# run-envd.sh: no private network namespace here; sharing the host's loopback"
    E2B_SDK_IN_NETNS=none
fi
if [ "$E2B_SDK_IN_NETNS" != none ]; then
    ip link set lo up || { echo "run-envd.sh: cannot bring up loopback in the namespace" >&2; exit 2; }
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/e2b-sdk.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && { i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -9 "$pid" 2>/dev/null; }
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$E2B_SDK_IN_NETNS" != none ]; then
    mkdir -p "$scratch/root-home"
    awk -F: -v OFS=: -v h="$scratch/root-home" '$1 == "root" { $6 = h } { print }' /etc/passwd >"$scratch/passwd"
    mount --bind "$scratch/passwd" /etc/passwd || { echo "run-envd.sh: cannot give root a scratch home" >&2; exit 2; }
else
    echo "# run-envd.sh: root's login shells read the machine's /root dotfiles"
fi

show_log() {
    echo "# envd log ($envd, $(wc -l <"$scratch/envd.log") lines):"
    sed 's/^/#   /' "$scratch/envd.log"
}

(cd "$scratch" && exec "$envd" --listen 127.0.0.1:49983 -v ${E2B_ENVD_ARGS:-}) >"$scratch/envd.log" 2>&1 &
pid=$!
i=0
until curl -sf -o /dev/null http://127.0.0.1:49983/health; do
    i=$((i+1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "run-envd.sh: envd did not come up" >&2; show_log >&2; exit 1
    fi
    sleep 0.1
done
# Whoever answered must be the envd started here: alive, listening, and
# the one that logged our /health request.
if ! kill -0 "$pid" 2>/dev/null || grep -q "cannot listen" "$scratch/envd.log" ||
    ! grep -q "GET /health" "$scratch/envd.log"; then
    echo "run-envd.sh: the envd on 127.0.0.1:49983 is not the one started here (namespace: $E2B_SDK_IN_NETNS)" >&2
    show_log >&2
    exit 1
fi
echo "# run-envd.sh: $envd (pid $pid) on 127.0.0.1:49983, network namespace: $E2B_SDK_IN_NETNS"

cd "$here" && E2B_DEBUG=true E2B_SDK_SCRATCH="$scratch" E2B_SDK_ENVD_PID="$pid" \
    timeout 600 node --test --test-concurrency=1 --test-reporter=tap envd.test.mjs
rc=$?
if ! kill -0 "$pid" 2>/dev/null; then
    echo "# run-envd.sh: envd (pid $pid) died during the tests"
    rc=1
fi
[ $rc = 0 ] || show_log
exit $rc
