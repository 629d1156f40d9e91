#!/bin/sh
# Unprivileged sandboxes: a throwaway user (made here, removed at the end)
# starts a sandbox from `host` in a user namespace, execs in it and kills it;
# the key escape probes run unprivileged too.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh" # root: to add and remove the user

for t in useradd userdel runuser; do
    command -v $t >/dev/null || { echo "1..0 # SKIP no $t"; exit 0; }
done

U=e2b-t4300-$$
useradd -m -d "$TRASH/u/home" -s /bin/sh "$U" 2>"$TRASH/useradd.err" ||
    { echo "Bail out! cannot add a user: $(cat "$TRASH/useradd.err")"; exit 1; }
# Last out: no process of the user may be left when it goes.
test_atexit "userdel -r $U"
test_atexit "pkill -KILL -u $U; sleep 1"
UID_OUT=$(id -u "$U")
chmod 711 "$TRASH" "$TRASH/u"
# The user runs copies: the build tree may be where it cannot go (a CI
# checkout under /root, a clone in a mktemp -d directory).
mkdir -m 755 "$TRASH/u/bin" && cp "$E2B" "$ENVD_BIN" "$TRASH/u/bin/" &&
    E2B=$TRASH/u/bin/e2b ENVD_BIN=$TRASH/u/bin/envd ||
    { echo "Bail out! cannot copy e2b for the user"; exit 1; }
XDG=$TRASH/u/xdg
mkdir -m 700 "$XDG" && chown "$U" "$XDG"
RUN=$XDG/e2b/sandboxes
test_atexit "runuser -u $U -- env HOME=$TRASH/u/home XDG_RUNTIME_DIR=$XDG $E2B sandbox kill --all"

# e2b as the user: its own HOME and XDG_RUNTIME_DIR, nothing of root's env
ue2b() {
    runuser -u "$U" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$TRASH/u/home" \
        XDG_RUNTIME_DIR="$XDG" E2B_ENVD="$ENVD_BIN" "$E2B" "$@"
}
init_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['initPid'])" "$RUN/$1/state.json"; }

test_expect_success 'a non-root user creates a sandbox from host; state under XDG_RUNTIME_DIR' '
    ue2b sandbox create -d host > id 2>err && ID=$(cat id) &&
    echo "$ID" | grep -Eq "^[a-z0-9]{20}$" &&
    test -f "$RUN/$ID/state.json" && test "$(stat -c %U "$RUN/$ID/state.json")" = "$U" &&
    test_grep "warning: .*limits: none but at most 4096 processes per user inside (unprivileged" err
'
ID=$(cat id 2>/dev/null || :)

test_expect_success 'inside it is root (uid 0); outside its processes are the user' '
    test "$(ue2b sandbox exec "$ID" "id -u")" = 0 &&
    test "$(ue2b sandbox exec "$ID" "echo hi > /tmp/f && cat /tmp/f")" = hi &&
    init=$(init_of "$ID") && envd=$(cut -d" " -f1 /proc/$init/task/$init/children) &&
    test "$(cat /proc/$envd/comm)" = envd &&
    test "$(awk "/^Uid:/{print \$2}" /proc/$init/status)" = "$UID_OUT" &&
    test "$(awk "/^Uid:/{print \$2}" /proc/$envd/status)" = "$UID_OUT" &&
    test "$(ue2b sandbox exec "$ID" "head -1 /proc/self/uid_map" | tr -s " " | sed "s/^ //")" = "0 $UID_OUT 1"
'

test_expect_success 'info says no cgroup limits apply' '
    ue2b sandbox info "$ID" > info && test_grep "^Limits: *none but at most 4096 processes" info
'

test_expect_success 'host files: secrets masked, other users'"'"' files unreadable, /usr and /etc read-only' '
    echo "host secret" > "$TRASH/secret" && chmod 600 "$TRASH/secret" &&
    test_must_fail ue2b sandbox exec "$ID" "cat $TRASH/secret" &&
    test "$(ue2b sandbox exec "$ID" "cat /etc/shadow | wc -c")" = 0 &&
    test_must_fail ue2b sandbox exec "$ID" "touch /usr/bin/e2b-escape" &&
    test_must_fail ue2b sandbox exec "$ID" "echo x >> /etc/passwd" &&
    test ! -e /usr/bin/e2b-escape &&
    other=$(find /etc /usr -maxdepth 3 -type f ! -perm -o+r -user root -size +0 2>/dev/null |
        grep -v "shadow\|sudoers\|/ssh\|ssl/private" | head -1) &&
    echo "root-only host file: $other" && test -n "$other" &&
    ue2b sandbox exec "$ID" "test -e $other" &&
    test "$(ue2b sandbox exec "$ID" "cat $other 2>/dev/null | wc -c")" = 0
'

test_expect_success 'privileged system calls are refused unprivileged too (mount, modules, keyring, bpf, ptrace of envd ...)' '
    cc -static -O1 -o probe "$TEST_DIR/probes/escape-probe.c" &&
    ue2b sandbox exec "$ID" "cat > /tmp/probe && chmod +x /tmp/probe" < probe &&
    envd_in=$(ue2b sandbox exec "$ID" "for p in /proc/[0-9]*; do [ \"\$(cat \$p/comm)\" = envd ] && basename \$p; done | head -1") &&
    port=$(free_port) &&
    { ue2b sandbox exec "$ID" "/tmp/probe $port $envd_in" > probe.out; rc=$?; } &&
    cat probe.out && echo "probe exit $rc" &&
    test_grep -v "^ALLOWED" probe.out && test_grep "^0 allowed" probe.out && test $rc = 0 &&
    test_must_fail ue2b sandbox exec "$ID" "mount -t tmpfs none /mnt" &&
    test_must_fail ue2b sandbox exec "$ID" "unshare -U -m true"
'

test_expect_success 'a fork bomb is stopped by the process limit, the user'"'"'s other processes are not' '
    ue2b sandbox create -d host --pids 64 > bid 2>/dev/null && B=$(cat bid) &&
    init=$(init_of "$B") && pidns=$(readlink /proc/$init/ns/pid) &&
    inside() { n=0; for p in /proc/[0-9]*; do [ "$(readlink $p/ns/pid 2>/dev/null)" = "$pidns" ] && n=$((n + 1)); done; echo $n; } &&
    # forks for as long as it can, and keeps trying
    ue2b sandbox exec -b "$B" "python3 -c \"import os, time
while True:
    try:
        os.fork() or (time.sleep(300), os._exit(0))
    except OSError:
        time.sleep(0.01)\"" > /dev/null &&
    wait_for 100 sh -c "test \$(ls /proc | wc -l) -gt 0 && n=0 && for p in /proc/[0-9]*; do [ \"\$(readlink \$p/ns/pid 2>/dev/null)\" = \"$pidns\" ] && n=\$((n + 1)); done; test \$n -ge 60" &&
    most=0 && i=0 &&
    while [ $i -lt 10 ]; do
        n=$(inside) && { [ "$n" -le "$most" ] || most=$n; }
        i=$((i + 1)); sleep 0.1
    done &&
    echo "most processes in the sandbox: $most" && test "$most" -le 64 &&
    runuser -u "$U" -- sh -c "sleep 0.1 & wait" &&
    ue2b sandbox kill "$B" && wait_for 100 sh -c "! kill -0 $init 2>/dev/null"
'

test_expect_success 'a snapshot or pause --to-disk (CRIU) is refused, saying why; the sandbox runs on' '
    test_must_fail ue2b sandbox snapshot create "$ID" 2>snap.err && cat snap.err &&
    test_grep "runs without root.*CRIU checkpoints need root" snap.err &&
    test_must_fail ue2b sandbox pause --to-disk "$ID" 2>pause.err &&
    test_grep "CRIU checkpoints need root" pause.err &&
    test "$(ue2b sandbox exec "$ID" "echo up")" = up &&
    ue2b sandbox list > list && test_grep "$ID.*running" list
'

test_expect_success 'kill ends it and leaves nothing' '
    init=$(init_of "$ID") &&
    ue2b sandbox kill "$ID" &&
    test ! -e "$RUN/$ID" &&
    wait_for 100 sh -c "! kill -0 $init 2>/dev/null" &&
    ! grep -q "$ID" /proc/self/mountinfo &&
    ! pgrep -u "$U" -f "$RUN/$ID" > /dev/null
'

test_expect_success '--internet: tap0 through slirp4netns, or a clear error when /dev/net/tun is not usable by the user' '
    if runuser -u "$U" -- test -r /dev/net/tun -a -w /dev/net/tun; then
        ue2b sandbox create -d host --internet > nid && n=$(cat nid) &&
        ue2b sandbox exec "$n" "grep -q tap0 /proc/net/dev" && ue2b sandbox kill "$n"
    else
        test_must_fail ue2b sandbox create -d host --internet 2>err &&
        test_grep "/dev/net/tun" err && test -z "$(ls "$RUN")"
    fi
'

test_done
