#!/bin/sh
# The guest binary's `init` applet as pid 1 of a new pid/mount/uts/net
# namespace: it mounts what envd needs, sets the hostname, starts envd,
# restarts it when it dies, reaps orphans, and ends on SIGTERM.
. "$(dirname "$0")/test-lib.sh"
test_have_root || { echo "1..0 # SKIP needs root for namespaces"; exit 0; }

# init mounts a tmpfs on /tmp in its namespace, so the socket lives elsewhere.
SOCKDIR=$(mktemp -d /var/tmp/e2b-init.XXXXXX)
test_atexit "rm -rf $SOCKDIR"
SOCK=$SOCKDIR/envd.sock
unshare --pid --fork --mount --uts --net --propagation private \
    "$ENVD_BIN" init --hostname guest-test -- --unix "$SOCK" --no-tcp > init.log 2>&1 &
UNSHARE=$!
test_atexit "kill $UNSHARE"

health() { test "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://x/health)" = 204; }

test_expect_success 'init starts envd, reachable on its socket' '
    wait_for 100 health
'

test_expect_success 'envd under init sees the namespace init set up' '
    e2b sandbox exec --envd "unix:$SOCK" - hostname > host.out && test "$(cat host.out)" = guest-test &&
    e2b sandbox exec --envd "unix:$SOCK" - cat /proc/mounts > mounts.out &&
    test_grep " /proc proc " mounts.out && test_grep " /dev/pts devpts " mounts.out &&
    test_grep " /run tmpfs " mounts.out && test_grep " /tmp tmpfs " mounts.out
'

test_expect_success 'init restarts envd when it dies' '
    envd_pid=$(pgrep -f "envd --unix $SOCK" | head -1) && test -n "$envd_pid" &&
    kill -9 "$envd_pid" &&
    wait_for 50 sh -c "! kill -0 $envd_pid 2>/dev/null" &&
    wait_for 100 health &&
    test_grep "restarting" init.log
'

test_expect_success 'init catches SIGTERM, SIGINT and SIGPWR (pid 1 drops default-handled ones from outside)' '
    init_pid=$(pgrep -P "$UNSHARE" | head -1) && test -n "$init_pid" &&
    cgt=$(sed -n "s/^SigCgt:[[:space:]]*//p" /proc/$init_pid/status) &&
    for sig in 15 2 30; do
        test $(( 0x$cgt >> (sig - 1) & 1 )) = 1 || { echo "signal $sig not caught: SigCgt $cgt"; return 1; }
    done
'

test_expect_success 'SIGTERM from outside right after init starts powers it off, bounded' '
    for i in 1 2 3 4 5; do
        unshare --pid --fork --mount --uts --net --propagation private \
            "$ENVD_BIN" init -- --unix "$SOCKDIR/early$i.sock" --no-tcp >early.log 2>&1 &
        u=$! &&
        wait_for 100 pgrep -x -P "$u" envd &&
        ip=$(pgrep -x -P "$u" envd) &&
        kill -TERM "$ip" &&
        if ! wait_for 100 sh -c "! kill -0 $u 2>/dev/null"; then
            echo "init $ip ignored SIGTERM"; kill -KILL "$ip"; return 1
        fi || return 1
    done
'

test_expect_success 'SIGTERM to init ends the namespace and everything in it' '
    init_pid=$(pgrep -P "$UNSHARE" | head -1) && test -n "$init_pid" &&
    kill -TERM "$init_pid" &&
    wait_for 100 sh -c "! kill -0 $UNSHARE 2>/dev/null" &&
    ! pgrep -f "envd --unix $SOCK" > /dev/null
'

test_done
