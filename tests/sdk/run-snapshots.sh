#!/bin/sh
# run-snapshots.sh BUILD_DIR - the official SDK's snapshots suite
# (snapshots.test.mjs: snapshot a sandbox whose Python process holds a
# counter in memory, create from it twice, fork it three ways, delete it,
# restart e2b serve) once per runtime, each against an `e2b serve
# --runtime RUNTIME` that the suite starts (and restarts) itself.
#   vm: a template built once with --runtime vm (lib-vm-template.sh: bash,
#       python3, busybox), so saved once as a snapshot that the first
#       sandbox restores; under TCG where KVM cannot run the guest.
#   ns: the host template. Run where the ns runtime can save a running
#       sandbox with its memory; skipped, with the reason the server gives,
#       where it cannot.
# RUNTIMES="vm ns" by default. A runtime whose prerequisites are missing
# is skipped (said); exit status: 1 if a suite that ran failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
e2b=$build/e2b
[ -x "$e2b" ] || { echo "run-snapshots.sh: no e2b binary in $build" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "# run-snapshots.sh: SKIP template builds and snapshots need root"; exit 0; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/e2b-sdk-snap.XXXXXX")
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data HOME=$scratch
export E2B_ENVD=${E2B_ENVD:-$build/envd}
cleanup() {
    E2B_API_URL= "$e2b" sandbox kill --all -q 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 141' PIPE

if [ ! -d "$here/node_modules/e2b" ]; then
    (cd "$here" && npm install --no-audit --no-fund >/dev/null) || { echo "run-snapshots.sh: npm install failed" >&2; exit 2; }
fi
key=$("$e2b" key create --name sdk-snapshots) || exit 1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Why a runtime cannot run the suite here, or nothing.
why_not() {
    case $1 in
    vm)
        command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64"; return; }
        command -v busybox >/dev/null || { echo "no busybox"; return; }
        ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "no guest kernel in /boot"; return; }
        [ -x /usr/bin/python3 ] || echo "no /usr/bin/python3 to put in the template" ;;
    ns)
        # what the server would answer: ask the runtime itself
        id=$(E2B_API_URL= "$e2b" sandbox create -d host --runtime ns 2>&1) || { echo "no ns sandbox: $id"; return; }
        out=$(E2B_API_URL= "$e2b" sandbox snapshot create "$id" 2>&1) && snap=$out || snap=
        E2B_API_URL= "$e2b" sandbox kill -q "$id" 2>/dev/null
        [ -n "$snap" ] && { E2B_API_URL= "$e2b" sandbox snapshot rm -q "$snap" 2>/dev/null; return; }
        echo "${out#e2b: }" ;;
    *) echo "unknown runtime" ;;
    esac
}

rc=0
for rt in ${RUNTIMES:-vm ns}; do
    why=$(why_not "$rt")
    if [ -n "$why" ]; then
        echo "# run-snapshots.sh: SKIP the $rt runtime: $why"
        continue
    fi
    tpl=host
    if [ "$rt" = vm ]; then
        . "$here/lib-vm-template.sh"
        t0=$(date +%s)
        vm_template_context "$scratch/vm" &&
            "$e2b" template build -q -n sdk-snap-vm -p "$scratch/vm" --runtime vm >"$scratch/build.out" 2>"$scratch/build.err" ||
            { echo "run-snapshots.sh: cannot build the VM template:" >&2; cat "$scratch/build.err" >&2; rc=1; continue; }
        echo "# run-snapshots.sh: template sdk-snap-vm built and saved in $(( $(date +%s) - t0 )) s"
        tpl=sdk-snap-vm
    fi
    port=$(free_port)
    echo "# run-snapshots.sh: the snapshots suite on the $rt runtime"
    (cd "$here" && E2B_BIN=$e2b SERVE_PORT=$port RUNTIME=$rt SDK_TEMPLATE=$tpl \
        E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port E2B_API_KEY=$key \
        timeout 900 node --test --test-concurrency=1 --test-reporter=tap snapshots.test.mjs) || rc=1
done
exit $rc
