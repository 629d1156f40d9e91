#!/bin/sh
# run-template.sh BUILD_DIR - the official SDK's Template builder (npm `e2b`,
# pinned) and E2B's own CLI (@e2b/cli, pinned) against `e2b serve`: a fresh
# server with its own key, store and state; a busybox OCI image made here,
# Debian's minbase image from tests/e2e's daily cache (made when missing).
# Builds need root: otherwise the suite is skipped. Exit status: the tests'.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
e2b=$build/e2b
[ -x "$e2b" ] || { echo "run-template.sh: no e2b binary in $build" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then
    echo "1..0 # SKIP template builds need root"
    exit 0
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/e2b-sdk-template.XXXXXX")
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data HOME=$scratch
export E2B_ENVD=${E2B_ENVD:-$build/envd}
pid= rpid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
    E2B_API_URL= "$e2b" sandbox kill --all -q 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 141' PIPE

if [ ! -d "$here/node_modules/e2b" ] || [ ! -d "$here/node_modules/@e2b/cli" ]; then
    (cd "$here" && npm install --no-audit --no-fund >/dev/null) || { echo "run-template.sh: npm install failed" >&2; exit 2; }
fi
# the images: lib-image.sh's helpers need no test harness for these
. "$here/../e2e/lib-image.sh"
# busybox's sh as /bin/bash too: the SDK runs commands through bash -l -c
mkdir -p "$scratch/busybox.root/bin" && printf '#!/bin/sh\nexec /bin/sh "$@"\n' > "$scratch/busybox.root/bin/bash" &&
    chmod 755 "$scratch/busybox.root/bin/bash" &&
    img_busybox "$scratch/busybox" 1 "$scratch/busybox.root" ||
    { echo "run-template.sh: cannot make the busybox image" >&2; exit 1; }
debian=$(img_debian 2>"$scratch/debian.err") || debian=
# a registry that wants a login, with the busybox image in it (for
# fromImage with credentials); skipped by the test when a tool is missing
registry=
if command -v docker-registry >/dev/null && command -v skopeo >/dev/null && command -v htpasswd >/dev/null; then
    rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$scratch/registry" &&
        htpasswd -Bbc "$scratch/registry/htpasswd" builder sesame 2>/dev/null &&
        printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\nauth:\n  htpasswd:\n    realm: test\n    path: %s\n' \
            "$scratch/registry/data" "$rport" "$scratch/registry/htpasswd" > "$scratch/registry/config.yml"
    docker-registry serve "$scratch/registry/config.yml" > "$scratch/registry/log" 2>&1 &
    rpid=$!
    i=0
    until curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$rport/v2/ | grep -q '^[24]'; do
        i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.1
    done
    skopeo --insecure-policy copy -q --dest-tls-verify=false --dest-creds builder:sesame \
        "oci:$scratch/busybox:1" "docker://127.0.0.1:$rport/private/busybox:1" 2>"$scratch/registry/push.err" &&
        registry=127.0.0.1:$rport
fi
key=$("$e2b" key create --name template-tests) || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# a small upload limit, so that the bad-input test can go past it
"$e2b" serve --listen 127.0.0.1:$port --upload-limit 64 >"$scratch/serve.log" 2>&1 &
pid=$!
i=0
until curl -sf -o /dev/null http://127.0.0.1:$port/health; do
    i=$((i+1))
    if [ $i -gt 50 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "run-template.sh: e2b serve did not come up" >&2; cat "$scratch/serve.log" >&2; exit 1
    fi
    sleep 0.1
done
# Debian's mirror for aptInstall: the test says why it skips when unreachable
apt_ok=
timeout 5 curl -sf -o /dev/null http://deb.debian.org/debian/dists/bookworm/Release 2>/dev/null && apt_ok=1
cd "$here" && E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port E2B_API_KEY=$key \
    TPL_BUSYBOX="oci:$scratch/busybox:1" TPL_DEBIAN="${debian:+oci:$debian:bookworm}" TPL_APT=$apt_ok \
    TPL_SCRATCH=$scratch E2B_BIN=$e2b TPL_REGISTRY=$registry \
    timeout 600 node --test --test-concurrency=1 --test-reporter=tap ${TPL_TESTS:-template.test.mjs cli.test.mjs}
rc=$?
[ $rc = 0 ] || { echo "# serve log:"; sed 's/^/#   /' "$scratch/serve.log" | tail -n 30; }
exit $rc
