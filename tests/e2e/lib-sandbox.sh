# lib-sandbox.sh - helpers for tests that start local sandboxes; source after test-lib.sh.
#
#   sbx_create [create options]   start a detached sandbox; its ID in $SBX (killed at exit)
#   sbx_gone ID                   nothing of it is left: state, cgroups, host mounts, and no
#                                 process in its pid or mount namespace (or its slirp4netns)
#   sbx_wait_gone ID              the same within 10 s, else what is left
#   sbx_tiny_template NAME CTX [SH]
#                                 build template NAME from scratch: the host's dash and its
#                                 libraries as /bin/sh (no other programs); SH runs before the
#                                 build to add files under CTX/root; prints the template ID

export E2B_ENVD=${E2B_ENVD:-$ENVD_BIN}

sbx_create() {
    SBX=$(e2b sandbox create -d "$@") || return 1
    test_atexit "e2b sandbox kill $SBX"
    test -n "$SBX" && sbx_track "$SBX"
}

# What identifies a sandbox's processes once its state is gone: its init's
# pid and the inodes of its pid and mount namespaces, kept in $TRASH/.sbx-ID
# (recorded by sbx_create, or by the first sbx_gone while it still runs).
# The kernel gives a freed namespace's inode number to the next new one (a
# sandbox another job starts meanwhile), so a sleeper holds the pid
# namespace open until the script ends: its number stays the sandbox's.
# (The mount namespace is not held: that would keep the sandbox's mounts.)
sbx_track() {
    local f=$TRASH/.sbx-$1 init pidns mntns
    [ -s "$f" ] && return 0
    init=$(sed -n 's/^ *"initPid": *\([0-9]*\).*/\1/p' "$E2B_RUNTIME_DIR/sandboxes/$1/state.json" 2>/dev/null || :)
    [ -n "$init" ] && [ "$init" != 0 ] || return 0
    pidns=$(readlink /proc/$init/ns/pid 2>/dev/null) && mntns=$(readlink /proc/$init/ns/mnt 2>/dev/null) &&
        [ "$pidns" != "$(readlink /proc/self/ns/pid)" ] || return 0
    sleep 7200 < /proc/$init/ns/pid > /dev/null 2>&1 &
    test_atexit "kill $!"
    [ "$(readlink /proc/$!/fd/0)" = "$pidns" ] || return 0 # it had ended: nothing to hold
    echo "$init $pidns $mntns" > "$f"
}

sbx_gone() {
    local id=$1 init pidns mntns p
    sbx_track "$id"
    test ! -e "$E2B_RUNTIME_DIR/sandboxes/$id" || { echo "state dir of $id left"; return 1; }
    for c in /sys/fs/cgroup/*/e2b/$id /sys/fs/cgroup/e2b/$id; do
        test ! -e "$c" || { echo "cgroup $c left"; return 1; }
    done
    ! grep -q "$id" /proc/self/mountinfo || { echo "mount of $id left in the host's namespace"; return 1; }
    [ -s "$TRASH/.sbx-$id" ] || return 0
    read -r init pidns mntns < "$TRASH/.sbx-$id"
    for p in /proc/[0-9]*; do
        case "$(readlink $p/ns/pid 2>/dev/null)" in
        "$pidns") echo "process ${p#/proc/} of $id left (its namespaces)"; return 1 ;;
        esac
        case "$(tr "\0" " " < $p/cmdline 2>/dev/null)" in
        "slirp4netns "*" $init tap0 ") echo "slirp4netns ${p#/proc/} of $id left"; return 1 ;;
        esac
    done
    return 0
}

# sbx_gone within 10 s (processes die asynchronously), else say what is left.
sbx_wait_gone() {
    wait_for 100 sbx_gone "$1" || sbx_gone "$1"
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
