# test-lib.sh - sourced by tests/e2e/tNNNN-*.sh; prints TAP (git's t/test-lib.sh shape).
#
#   . "$(dirname "$0")/test-lib.sh"
#   test_expect_success 'lists verbs' 'e2b sandbox 2>err; test $? = 2'
#   test_done
#
# Each script runs in its own scratch directory ($TRASH) with HOME inside it,
# so nothing touches the real ~/.e2b. $E2B is the binary under test; `e2b`
# is on PATH. Cleanups registered with test_when_finished run after each test,
# and test_atexit ones when the script ends (even on failure or signal); each
# cleanup is one line of shell.

set -u
TEST_DIR=$(cd "$(dirname "$0")" && pwd)
SRC_DIR=$(cd "$TEST_DIR/../.." && pwd)
BUILD_DIR=${E2B_BUILD_DIR:-$SRC_DIR/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$SRC_DIR/$BUILD_DIR ;; esac
E2B=$BUILD_DIR/e2b
ENVD_BIN=$BUILD_DIR/envd
TRASH=$(mktemp -d "${TMPDIR:-/tmp}/e2b-test.$(basename "$0" .sh).XXXXXX")
export HOME=$TRASH/home XDG_CONFIG_HOME=$TRASH/home/.config XDG_DATA_HOME=$TRASH/home/.local/share
export E2B_RUNTIME_DIR=$TRASH/run E2B_DATA_DIR=$TRASH/data
unset E2B_API_KEY E2B_API_URL E2B_DOMAIN E2B_SANDBOX_URL E2B_CONFIG E2B_DEBUG
mkdir -p "$HOME" "$TRASH/bin"
ln -s "$E2B" "$TRASH/bin/e2b"
export PATH=$TRASH/bin:$PATH
cd "$TRASH" || exit 1

test_count=0
test_failed=0
# Cleanups live in files: test bodies run in a subshell, so a variable set
# there would be lost with it. Newest first, like a stack.
_CLEANUPS=$TRASH/.cleanups
_ATEXIT=$TRASH/.atexit
: > "$_CLEANUPS"
: > "$_ATEXIT"

_push() { { printf '%s\n' "$2"; cat "$1"; } > "$1.new" && mv "$1.new" "$1"; }
test_when_finished() { _push "$_CLEANUPS" "$1"; }
test_atexit() { _push "$_ATEXIT" "$1"; }

_run_file() { # run each line of a cleanup file, ignoring failures
    [ -s "$1" ] || return 0
    while IFS= read -r _line; do (eval "$_line") >/dev/null 2>&1; done < "$1"
    : > "$1"
}

_run_atexit() {
    _run_file "$_CLEANUPS"
    _run_file "$_ATEXIT"
    [ -n "${E2B_KEEP_TRASH:-}" ] || rm -rf "$TRASH"
}
trap '_run_atexit' EXIT
trap '_run_atexit; exit 130' INT TERM

_report() { # status desc
    test_count=$((test_count + 1))
    if [ "$1" = 0 ]; then
        echo "ok $test_count - $2"
    else
        test_failed=$((test_failed + 1))
        echo "not ok $test_count - $2"
        # on stderr too: prove shows a script's stderr, not its TAP comments
        { echo "# $(basename "$0") test $test_count failed: $2"
          [ -s "$TRASH/.test-output" ] && sed 's/^/#   /' "$TRASH/.test-output" | tail -n 40; } |
            tee /dev/stderr
    fi
}

# Prerequisites, as git's test-lib has them: a test that names one
# (test_expect_success PREREQ[,PREREQ...] 'desc' 'body') is skipped, and
# says why, when it is not met. test_set_prereq sets one; a lazy one is a
# script run (in a subshell) the first time a test asks for it.
_PREREQ_DIR=$TRASH/.prereqs
mkdir -p "$_PREREQ_DIR"
test_set_prereq() { : > "$_PREREQ_DIR/$1.yes"; }
test_lazy_prereq() { printf '%s\n' "$2" > "$_PREREQ_DIR/$1.lazy"; }
test_have_prereq() { # PREREQ[,PREREQ...]; the missing ones in $_missing_prereq
    _missing_prereq=
    local p IFS=,
    for p in $1; do
        if [ ! -e "$_PREREQ_DIR/$p.yes" ] && [ ! -e "$_PREREQ_DIR/$p.no" ] && [ -e "$_PREREQ_DIR/$p.lazy" ]; then
            if (cd "$TRASH" && eval "$(cat "$_PREREQ_DIR/$p.lazy")") >/dev/null 2>&1; then
                : > "$_PREREQ_DIR/$p.yes"
            else
                : > "$_PREREQ_DIR/$p.no"
            fi
        fi
        [ -e "$_PREREQ_DIR/$p.yes" ] || _missing_prereq=${_missing_prereq:+$_missing_prereq,}$p
    done
    [ -z "$_missing_prereq" ]
}
test_lazy_prereq BUSYBOX 'command -v busybox'
test_lazy_prereq ROOT 'test "$(id -u)" = 0'

# A test body is one &&-chain: a command whose failure is not chained is
# ignored by `set -e` rules in places (in `a; b`, `if`, `!`, ...) and hides
# a broken test. So each body is first run as "(exit 117) && BODY": a body
# that is one chain runs nothing of itself and exits 117; anything else
# (a line not joined with &&, a stray `;`) runs and exits otherwise. As in
# git's test-lib (chain-lint); E2B_TEST_CHAIN_LINT=0 turns it off. The lint
# runs with an empty PATH, so what a broken body does run finds no program.
_chain_lint() { # body
    [ "${E2B_TEST_CHAIN_LINT:-1}" = 0 ] && return 0
    (PATH=/nonexistent; eval "(exit 117) && $1") >/dev/null 2>&1 </dev/null
    [ $? = 117 ]
}

test_expect_success() { # [prereq] desc body
    if [ $# = 3 ]; then
        if ! test_have_prereq "$1"; then
            test_skip "$2" "missing $_missing_prereq"
            return 0
        fi
        shift
    fi
    if ! _chain_lint "$2"; then
        # not run: a body that is not one chain can pass whatever it tests
        echo "broken &&-chain: every line of the body but the last must end in && (or be inside a compound command); not run" > "$TRASH/.test-output"
        _run_file "$_CLEANUPS"
        _report 1 "$1"
        return 0
    fi
    (set -e; eval "$2") >"$TRASH/.test-output" 2>&1
    local rc=$?
    _run_file "$_CLEANUPS"
    _report $rc "$1"
}

test_skip() { # desc why
    test_count=$((test_count + 1))
    echo "ok $test_count - $1 # SKIP $2"
}

# Runs a command that must fail in the ordinary way (exit 1..124), not crash.
test_must_fail() {
    local rc=0
    "$@" || rc=$?
    if [ $rc = 0 ]; then echo "test_must_fail: '$*' succeeded" >&2; return 1; fi
    if [ $rc -gt 124 ]; then echo "test_must_fail: '$*' died with $rc" >&2; return 1; fi
    return 0
}

test_expect_code() { # code cmd...
    local want=$1 rc=0; shift
    "$@" || rc=$?
    [ $rc = "$want" ] && return 0
    echo "test_expect_code: '$*' exited $rc, want $want" >&2
    return 1
}

test_cmp() { diff -u "$1" "$2"; }

# Lines of a file must contain a string.
test_grep() { # [-v] pattern file
    if [ "$1" = -v ]; then
        shift
        ! grep -q -e "$1" "$2" || { echo "found '$1' in $2:" >&2; cat "$2" >&2; return 1; }
    else
        grep -q -e "$1" "$2" || { echo "no '$1' in $2:" >&2; cat "$2" >&2; return 1; }
    fi
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Wait (bounded) until a command succeeds.
wait_for() { # tries cmd...
    local n=$1; shift
    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

test_have_root() { [ "$(id -u)" = 0 ]; }

# Network namespaces of the test's own, each held by a sleeping process and
# named only in $TRASH: no /run/netns entry, so nothing is shared with other
# runs (and no race on /run/netns becoming a mount point, which made
# `ip netns exec` fail with "Invalid argument" while another run added one).
#   netns_new NAME            make it (root); it goes when the script ends
#   netns_exec NAME CMD...    run CMD in it (in the background, call
#                             nsenter -t "$(netns_pid NAME)" -n -- CMD
#                             instead: $! is then CMD itself)
#   netns_pid NAME            a pid in it, for `ip link set DEV netns PID`
netns_new() {
    local pid
    unshare -n sleep 86400 </dev/null >/dev/null 2>&1 &
    pid=$!
    echo "$pid" > "$TRASH/.netns-$1"
    test_atexit "kill $pid"
    wait_for 100 sh -c "test \"\$(readlink /proc/$pid/ns/net)\" != \"$(readlink /proc/self/ns/net)\""
}
netns_pid() { cat "$TRASH/.netns-$1"; }
netns_exec() {
    local n=$1
    shift
    nsenter -t "$(netns_pid "$n")" -n -- "$@"
}

test_done() {
    echo "1..$test_count"
    [ $test_failed = 0 ]
    exit $?
}
