# lib-sandbox.sh - helpers for tests that start local sandboxes; source after test-lib.sh.
#
#   sbx_create [create options]   start a detached sandbox; its ID in $SBX (killed at exit)
#   sbx_gone ID                   nothing of it is left: state, cgroups, mounts, processes

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

# Every pid in the sandbox's cgroup (none once it is gone).
sbx_pids() {
    cat /sys/fs/cgroup/pids/e2b/$1/cgroup.procs /sys/fs/cgroup/e2b/$1/cgroup.procs 2>/dev/null
}

test_have_root || { echo "1..0 # SKIP local sandboxes need root"; exit 0; }
