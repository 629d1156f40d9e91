#!/bin/sh
# Faults: kill -9 of the supervisor, of envd and of the CLI in the middle of
# an exec leave no mount, cgroup, namespace or process behind.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

state() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" \
    "$E2B_RUNTIME_DIR/sandboxes/$1/state.json" "$2"; }

# Namespaces held by any process of the sandbox (by its init's pid ns inode).
ns_alive() { # id init-pidns
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$2" ] && return 0
    done
    return 1
}

test_expect_success 'kill -9 of the supervisor: the sandbox dies with it, the next e2b run clears the rest' '
    sbx_create host && id=$SBX &&
    sup=$(state "$id" supervisorPid) && init=$(state "$id" initPid) &&
    pidns=$(readlink /proc/$init/ns/pid) &&
    e2b sandbox exec --background "$id" "sleep 300" > /dev/null &&
    kill -9 "$sup" &&
    wait_for 100 sh -c "! kill -0 $init 2>/dev/null" &&
    ! ns_alive "$id" "$pidns" &&
    e2b sandbox list > /dev/null &&
    sbx_wait_gone "$id"
'

test_expect_success 'kill -9 of the supervisor of a paused sandbox: its frozen processes die too' '
    sbx_create host && id=$SBX &&
    sup=$(state "$id" supervisorPid) && init=$(state "$id" initPid) &&
    pidns=$(readlink /proc/$init/ns/pid) &&
    e2b sandbox exec --background "$id" "sleep 300" > /dev/null &&
    e2b sandbox pause "$id" &&
    { grep -q FROZEN /sys/fs/cgroup/freezer/e2b/$id/sandbox/freezer.state 2>/dev/null ||
        grep -q 1 /sys/fs/cgroup/e2b/$id/cgroup.freeze; } &&
    kill -9 "$sup" &&
    wait_for 100 sh -c "! kill -0 $init 2>/dev/null" &&
    wait_for 100 sh -c "! { for p in /proc/[0-9]*; do readlink \$p/ns/pid; done 2>/dev/null | grep -qx \"$pidns\"; }" &&
    ! ns_alive "$id" "$pidns" &&
    e2b sandbox list > /dev/null && sbx_wait_gone "$id"
'

test_expect_success 'kill -9 of the supervisor of an --internet sandbox leaves no slirp4netns' '
    sbx_create host --internet && id=$SBX &&
    sup=$(state "$id" supervisorPid) && init=$(state "$id" initPid) &&
    pgrep -f "^slirp4netns.* $init tap0" > /dev/null &&
    kill -9 "$sup" &&
    wait_for 100 sh -c "! kill -0 $init 2>/dev/null" &&
    wait_for 100 sh -c "! pgrep -f \"^slirp4netns.* $init tap0\"" &&
    e2b sandbox list > /dev/null && sbx_wait_gone "$id"
'

test_expect_success 'kill -9 of the supervisor of an ext4-image sandbox leaves no loop device' '
    sbx_tiny_template img ctx > tid &&
    tdir=$(readlink -f "$E2B_DATA_DIR/templates/$(cat tid)/current") && rm -rf "$tdir/rootfs" &&
    sbx_create img && id=$SBX &&
    losetup -j "$tdir/rootfs.ext4" > loops && test -s loops &&
    sup=$(state "$id" supervisorPid) && init=$(state "$id" initPid) &&
    kill -9 "$sup" &&
    wait_for 100 sh -c "! kill -0 $init 2>/dev/null" &&
    wait_for 100 sh -c "test -z \"\$(losetup -j $tdir/rootfs.ext4)\"" &&
    e2b sandbox list > /dev/null && sbx_wait_gone "$id"
'

test_expect_success 'kill -9 of envd ends the sandbox and frees everything' '
    sbx_create host && id=$SBX &&
    init=$(state "$id" initPid) && pidns=$(readlink /proc/$init/ns/pid) &&
    envd=$(cat /proc/$init/task/$init/children | tr " " "\n" | head -1) &&
    test "$(cat /proc/$envd/comm)" = envd &&
    kill -9 "$envd" &&
    sbx_wait_gone "$id" &&
    ! ns_alive "$id" "$pidns"
'

test_expect_success 'kill -9 of the CLI in the middle of exec, then kill: nothing left' '
    sbx_create host && id=$SBX &&
    init=$(state "$id" initPid) && pidns=$(readlink /proc/$init/ns/pid) &&
    { e2b sandbox exec "$id" "sleep 300" & } && cli=$! &&
    wait_for 300 sh -c "e2b sandbox process list $id | grep -q \"sleep 300\"" && kill -9 $cli &&
    e2b sandbox exec "$id" true &&
    e2b sandbox kill "$id" &&
    sbx_wait_gone "$id" && ! ns_alive "$id" "$pidns"
'

test_expect_success 'a dead supervisor'"'"'s pid taken by another process: kill and list leave that process alone' '
    { sleep 300 & } && victim=$! && test_when_finished "kill $victim" &&
    sbx_create host && id=$SBX &&
    sup=$(state "$id" supervisorPid) && init=$(state "$id" initPid) &&
    kill -9 "$sup" && wait_for 100 sh -c "! kill -0 $init 2>/dev/null" &&
    sed -i "s/\"supervisorPid\": $sup/\"supervisorPid\": $victim/" "$E2B_RUNTIME_DIR/sandboxes/$id/state.json" &&
    test "$(state "$id" supervisorPid)" = "$victim" &&
    test_must_fail e2b sandbox kill "$id" 2>err && test_grep "not found" err &&
    e2b sandbox list > /dev/null && kill -0 "$victim" && sbx_wait_gone "$id"
'

test_expect_success 'the supervisor leaves its creator'"'"'s cgroup: killing that job (as a session end does) leaves the sandbox running' '
    h=/sys/fs/cgroup/systemd && { [ -f $h/cgroup.procs ] || h=/sys/fs/cgroup; } &&
    job=$h/e2b-t4200-job.$$ &&
    mkdir "$job" && test_when_finished "rmdir $job" &&
    sh -c "echo \$\$ > $job/cgroup.procs && exec e2b sandbox create -d host" > id && id=$(cat id) &&
    test_atexit "e2b sandbox kill $id" &&
    for i in $(seq 50); do
        pids=$(cat "$job/cgroup.procs") && [ -n "$pids" ] || break
        kill -9 $pids || :
        wait_for 10 sh -c "test -z \"\$(cat $job/cgroup.procs)\"" && break
    done &&
    test -z "$(cat "$job/cgroup.procs")" &&
    test "$(e2b sandbox exec "$id" echo alive)" = alive &&
    grep -q "e2b$" /proc/$(state "$id" supervisorPid)/cgroup &&
    e2b sandbox kill "$id" && sbx_wait_gone "$id"
'

test_expect_success 'kill -9 of a create in flight leaves nothing once reaped' '
    # the CLI waits for the supervisor about 40 ms: kill it the moment the state appears
    for try in 1 2 3 4 5; do
        { e2b sandbox create -d host > /dev/null 2>&1 & } && cli=$! && n=0 &&
        while ! ls "$E2B_RUNTIME_DIR"/sandboxes/*/state.json > /dev/null 2>&1 && [ $n -lt 100000 ]; do
            n=$((n + 1))
        done &&
        kill -9 $cli 2>/dev/null && break
        wait $cli; e2b sandbox kill --all -q
    done &&
    echo "killed the CLI in flight on try $try" && test $try -lt 5 &&
    d=$(dirname "$(ls "$E2B_RUNTIME_DIR"/sandboxes/*/state.json | head -1)") && id=$(basename "$d") &&
    wait_for 100 sh -c "e2b sandbox list; ! test -e $d/state.json || grep -q running $d/state.json" &&
    { e2b sandbox kill "$id" 2>/dev/null || :; } &&
    e2b sandbox list > /dev/null &&
    test -z "$(ls "$E2B_RUNTIME_DIR/sandboxes")" && sbx_wait_gone "$id"
'

test_expect_success 'creates racing the reaper (every e2b run reaps) all live' '
    # Each create and each list reaps dead sandboxes; a sandbox being born
    # must never look dead to them.
    { ( i=0; while [ $i -lt 300 ] && [ ! -e creates.done ]; do e2b sandbox list -q >/dev/null 2>&1; i=$((i+1)); done ) & } &&
    lister=$! &&
    for round in 1 2 3 4 5; do
        for j in 1 2 3 4 5 6; do (e2b sandbox create -d host --timeout 120 >> ids 2>> errs || echo fail >> errs) & done
        wait_for 600 sh -c "test \$(cat ids 2>/dev/null | wc -l) -ge $((round * 6)) || test -s errs" || break
    done &&
    touch creates.done && wait $lister &&
    { test ! -s errs || { cat errs; false; }; } &&
    test "$(wc -l < ids)" = 30 &&
    for id in $(cat ids); do test "$(e2b sandbox exec "$id" "echo ok")" = ok || return 1; done &&
    e2b sandbox kill --all -q && for id in $(cat ids); do sbx_wait_gone "$id" || return 1; done
'

test_done
