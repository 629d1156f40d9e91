#!/bin/sh
# run-vm.sh BUILD_DIR - the official SDK's serve suite and envd suite
# against VM sandboxes (the vm runtime: KVM where it can run the guest,
# else TCG). One template, built once with --runtime vm (so saved once as
# a snapshot, which every sandbox here restores): the host's bash and
# python3 with busybox for the rest. The serve suite runs against
# `e2b serve --runtime vm` with SDK_TEMPLATE naming it; the envd suite
# (E2B_DEBUG: the SDK talks to 127.0.0.1:49983) against one sandbox of it,
# its envd.sock forwarded to that port in a network namespace of the run's
# own. Skipped (exit 0, said) without root, QEMU, a guest kernel or busybox.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
e2b=$build/e2b
[ -x "$e2b" ] || { echo "run-vm.sh: no e2b binary in $build" >&2; exit 2; }
skip() { echo "# run-vm.sh: SKIP $1"; exit 0; }
[ "$(id -u)" = 0 ] || skip "template builds need root"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
command -v busybox >/dev/null || skip "no busybox"
ls /boot/vmlinuz-* >/dev/null 2>&1 || skip "no guest kernel in /boot"
py=/usr/bin/python3
[ -x "$py" ] || skip "no /usr/bin/python3 to put in the template"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/e2b-sdk-vm.XXXXXX")
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data HOME=$scratch
export E2B_ENVD=${E2B_ENVD:-$build/envd}
pid= fwd=
cleanup() {
    [ -n "$fwd" ] && kill "$fwd" 2>/dev/null
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    E2B_API_URL= "$e2b" sandbox kill --all -q 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 141' PIPE

if [ ! -d "$here/node_modules/e2b" ]; then
    (cd "$here" && npm install --no-audit --no-fund >/dev/null) || { echo "run-vm.sh: npm install failed" >&2; exit 2; }
fi

# The template: bash, python3, busybox (lib-vm-template.sh)
. "$here/lib-vm-template.sh"
vm_template_context "$scratch/vm" ||
    { echo "run-vm.sh: cannot make the template's files" >&2; exit 1; }
t0=$(date +%s)
tpl=$("$e2b" template build -q -n sdk-vm -p "$scratch/vm" --runtime vm 2>"$scratch/build.err") && [ -n "$tpl" ] ||
    { echo "run-vm.sh: cannot build the VM template:" >&2; cat "$scratch/build.err" >&2; exit 1; }
echo "# run-vm.sh: template sdk-vm ($tpl) built and saved in $(( $(date +%s) - t0 )) s"
# the serve suite's tiny template (no runtime of its own: a VM from serve's default)
ctx=$scratch/tiny
mkdir -p "$ctx/root/bin" "$ctx/root/etc" && cp /bin/dash "$ctx/root/bin/sh" &&
    for l in $(ldd /bin/dash | grep -o "/[^ ]*"); do mkdir -p "$ctx/root$(dirname "$l")" && cp "$l" "$ctx/root$l"; done &&
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ctx/root/etc/passwd" && printf 'root:x:0:\n' > "$ctx/root/etc/group" &&
    printf 'FROM scratch\nCOPY root/ /\n' > "$ctx/e2b.Dockerfile" &&
    tiny_id=$("$e2b" template build -q -n sdk-tiny -p "$ctx" 2>"$scratch/build.err") && [ -n "$tiny_id" ] ||
    { echo "run-vm.sh: cannot build the tiny template:" >&2; cat "$scratch/build.err" >&2; exit 1; }

rc=0
# 1. the serve suite, every sandbox a VM
key=$("$e2b" key create --name sdk-vm) || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$e2b" serve --listen 127.0.0.1:$port --deny-internet --runtime vm >"$scratch/serve.log" 2>&1 &
pid=$!
i=0
until curl -sf -o /dev/null http://127.0.0.1:$port/health; do
    i=$((i+1))
    if [ $i -gt 50 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "run-vm.sh: e2b serve did not come up" >&2; cat "$scratch/serve.log" >&2; exit 1
    fi
    sleep 0.1
done
echo "# run-vm.sh: the serve suite, sandboxes as VMs"
(cd "$here" && E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port E2B_API_KEY=$key \
    SDK_TEMPLATE=sdk-vm SDK_TEMPLATE_ID=$tpl SDK_TINY_TEMPLATE_ID=$tiny_id \
    timeout 600 node --test --test-concurrency=1 --test-reporter=tap serve.test.mjs) || {
    rc=1; echo "# serve log:"; sed 's/^/#   /' "$scratch/serve.log" | tail -n 30; }
kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
pid=

# 2. the envd suite against the envd of one VM, on 127.0.0.1:49983 of a
# network namespace of our own (the SDK's debug mode knows no other port)
id=$("$e2b" sandbox create -d sdk-vm --timeout 1200) || exit 1
sock=$E2B_RUNTIME_DIR/sandboxes/$id/envd.sock
echo "# run-vm.sh: the envd suite, against sandbox $id (a VM)"
cat > "$scratch/fwd.py" <<-\EOF
	# 127.0.0.1:49983 to a unix socket, a connection each
	import asyncio, sys
	async def pipe(a, b):
	    try:
	        while True:
	            d = await a.read(65536)
	            if not d:
	                break
	            b.write(d)
	            await b.drain()
	        b.write_eof()
	    except Exception:
	        pass
	async def handle(r, w):
	    try:
	        ur, uw = await asyncio.open_unix_connection(sys.argv[1])
	    except OSError:
	        w.close()
	        return
	    await asyncio.gather(pipe(r, uw), pipe(ur, w))
	    w.close()
	    uw.close()
	async def main():
	    s = await asyncio.start_server(handle, "127.0.0.1", 49983)
	    open(sys.argv[2], "w").close()
	    async with s:
	        await s.serve_forever()
	asyncio.run(main())
	EOF
unshare -n sh -c '
    ip link set lo up || exit 2
    python3 "$1/fwd.py" "$2" "$1/fwd.ready" & f=$!
    i=0; until [ -e "$1/fwd.ready" ]; do i=$((i+1)); [ $i -gt 100 ] && exit 2; sleep 0.1; done
    cd "$3" && E2B_DEBUG=true E2B_SDK_SCRATCH=/tmp timeout 900 node --test --test-concurrency=1 --test-reporter=tap envd.test.mjs
    r=$?; kill $f; exit $r' sh "$scratch" "$sock" "$here" || rc=1
[ $rc = 0 ] || { echo "# sandbox log:"; "$e2b" sandbox logs "$id" 2>&1 | sed 's/^/#   /' | tail -n 30; }
exit $rc
