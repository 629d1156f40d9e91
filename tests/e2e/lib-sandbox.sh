# lib-sandbox.sh - helpers for tests that start local sandboxes; source after test-lib.sh.
#
#   sbx_create [create options]   start a detached sandbox; its ID in $SBX (killed at exit)
#   sbx_gone ID                   nothing of it is left: state, cgroups, mounts, processes
#   sbx_tiny_template NAME CTX [SH]
#                                 build template NAME from scratch: the host's dash and its
#                                 libraries as /bin/sh (no other programs); SH runs before the
#                                 build to add files under CTX/root; prints the template ID

export E2B_ENVD=${E2B_ENVD:-$ENVD_BIN}

sbx_create() {
    SBX=$(e2b sandbox create -d "$@") || return 1
    test_atexit "e2b sandbox kill $SBX"
    test -n "$SBX"
}

sbx_gone() {
    local id=$1
    test ! -e "$E2B_RUNTIME_DIR/sandboxes/$id" || { echo "state dir of $id left"; return 1; }
    for c in /sys/fs/cgroup/*/e2b/$id /sys/fs/cgroup/e2b/$id; do
        test ! -e "$c" || { echo "cgroup $c left"; return 1; }
    done
    ! grep -q "$id" /proc/self/mountinfo || { echo "mount of $id left"; return 1; }
    ! grep -q "$E2B_RUNTIME_DIR/sandboxes/$id" /proc/[0-9]*/cmdline 2>/dev/null || {
        echo "process of $id left"; return 1; }
    return 0
}

sbx_tiny_template() {
    mkdir -p "$2/root/bin" "$2/root/etc" &&
    cp /bin/dash "$2/root/bin/sh" &&
    for l in $(ldd /bin/dash | grep -o "/[^ ]*"); do
        mkdir -p "$2/root$(dirname $l)" && cp "$l" "$2/root$l" || return 1
    done &&
    printf "root:x:0:0:root:/root:/bin/sh\n" > "$2/root/etc/passwd" &&
    printf "root:x:0:\n" > "$2/root/etc/group" &&
    printf "FROM scratch\nCOPY root/ /\n" > "$2/e2b.Dockerfile" &&
    eval "${3:-:}" &&
    e2b template build -n "$1" -p "$2" 2>"$2.build.err"
}

# Every pid in the sandbox's cgroup (none once it is gone).
sbx_pids() {
    cat /sys/fs/cgroup/pids/e2b/$1/cgroup.procs /sys/fs/cgroup/e2b/$1/cgroup.procs 2>/dev/null
}

test_have_root || { echo "1..0 # SKIP local sandboxes need root"; exit 0; }
