#!/bin/sh
# envd's options are one list (E2B_ENVD_OPTIONS) for its parser, its usage
# and `e2b envd`: the usage names every option the parser takes, and the
# static envd and `e2b envd` take and list the same ones.
. "$(dirname "$0")/test-lib.sh"

# opts FILE: the long options a usage lists, one a line; valued FILE: those
# that take a value ("--port PORT")
opts() { sed -n 's/^ *\(-., \)\{0,1\}--\([a-z0-9-]*\).*/\2/p' "$1"; }
valued() { sed -n 's/^ *\(-., \)\{0,1\}--\([a-z0-9-]*\) [A-Z].*/\2/p' "$1"; }

test_expect_success 'envd --help and e2b envd --help list the same options, the same way' '
    "$ENVD_BIN" --help >envd.help &&
    e2b envd --help >e2b.help &&
    opts envd.help >envd.opts && test "$(wc -l <envd.opts)" -gt 10 &&
    sed -n "/^Options:/,\$p" envd.help >envd.table &&
    sed -n "/^Options:/,\$p" e2b.help >e2b.table &&
    test_cmp envd.table e2b.table
'

test_expect_success 'every option the usage lists is taken, as --name and as Go-style -name' '
    valued envd.help >valued.opts &&
    for o in $(cat envd.opts); do
        if grep -qx -- "$o" valued.opts; then v=1; else v=; fi &&
        "$ENVD_BIN" --$o $v --help >out && test_grep "^usage: envd" out &&
        "$ENVD_BIN" -$o $v --help >out && test_grep "^usage: envd" out &&
        e2b envd --$o $v --help >out && test_grep "^usage: e2b envd" out || return 1
    done
'

test_expect_success 'what envd has always taken, upstream flags included, is in the usage' '
    for o in port listen unix no-tcp user access-token sync-clock ready-fd listen-fd init-fd \
        watcher-idle-timeout verbose version isnotfc no-cgroups cgroup-root; do
        grep -qx -- "$o" envd.opts || { echo "--$o is not in the usage" && return 1; }
    done &&
    test_grep "^  -v, --verbose " envd.help
'

test_expect_success 'an option the usage does not list is refused, and named' '
    test_expect_code 2 "$ENVD_BIN" --no-such-option 2>err &&
    test_grep "unknown option .--no-such-option." err &&
    test_grep "^usage: envd" err &&
    test_expect_code 2 e2b envd --no-such-option 2>err &&
    test_grep "no-such-option" err
'

test_expect_success '--version from both' '
    "$ENVD_BIN" --version >a && e2b envd --version >b && test_cmp a b && test -s a
'

test_done
