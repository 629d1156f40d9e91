#!/bin/sh
# The command frame: exit codes, one-line errors with hints, and help, man
# pages and completions agreeing with the command table for every command.
. "$(dirname "$0")/test-lib.sh"

# Every visible command, from the table itself ("auth login", "sandbox files ls", ...).
e2b __man commands | sed -n 's/^\*e2b \(.*\)\*$/\1/p' > commands
groups=$(e2b __complete -- '' )

test_expect_success 'the table lists commands' '
    test "$(wc -l < commands)" -gt 5
'

test_expect_success 'no arguments: usage on stderr, exit 2' '
    test_expect_code 2 e2b 2>err &&
    test_grep "^usage: e2b" err
'

test_expect_success '--version and version agree' '
    e2b --version > a && e2b version > b && test_cmp a b && test_grep "^e2b [0-9]" a
'

test_expect_success 'unknown command: exit 2, one error line and a hint' '
    test_expect_code 2 e2b nosuch 2>err &&
    test "$(wc -l < err)" = 2 &&
    test_grep "^e2b: unknown command .nosuch." err &&
    test_grep "^hint: see .e2b --help." err
'

test_expect_success 'a group without a command: exit 2, error, hint' '
    for g in $(e2b __complete -- "" | grep -v "^help$\|^version$"); do
        grep -q "^$g " commands || continue
        test_expect_code 2 e2b $g 2>err &&
        test "$(wc -l < err)" = 2 &&
        test_grep "^e2b: .e2b $g. needs a command: " err &&
        test_grep "^hint: see .e2b $g --help." err || return 1
    done
'

test_expect_success 'unknown option on every command: exit 2, error names it, hint' '
    while read -r cmd; do
        test_expect_code 2 e2b $cmd --nosuch </dev/null >out 2>err &&
        test "$(wc -l < err)" = 2 &&
        test_grep "unknown option .--nosuch. for .$cmd." err &&
        test_grep "^hint: see .e2b $cmd --help." err || return 1
    done < commands
'

# Option names a text mentions, as a sorted list.
opt_names() { grep -o -- "--[a-z][a-z0-9-]*" | sort -u; }

test_expect_success 'help, man page and completion show the same options for every command' '
    while read -r cmd; do
        page=$BUILD_DIR/man/e2b-$(echo "$cmd" | tr " " -).1
        test -f "$page" || { echo "no man page for $cmd: $page"; return 1; }
        e2b help $cmd | sed -n "/^Options:\\|^Global options:/,\$p" | opt_names > help.opts &&
        e2b $cmd -h | sed -n "/^Options:\\|^Global options:/,\$p" | opt_names > dash-h.opts &&
        MANWIDTH=200 man -l "$page" 2>/dev/null | awk "/^[A-Z]/ { on = /^OPTIONS/ } on" | opt_names > man.opts &&
        e2b __complete -- $cmd -- | opt_names > comp.opts &&
        test_cmp help.opts dash-h.opts &&
        test_cmp help.opts comp.opts || { echo "completion differs for $cmd"; return 1; }
        # The man page documents the command options and --help; globals live
        # in e2b(1). A raw command (envd) takes no globals: all it takes is its own.
        e2b __complete -- $cmd -- | opt_names > all.opts
        e2b $cmd -h | grep -q "^Global options:" &&
            for g in $(e2b __complete -- --); do sed -i "/^$g\$/d" all.opts; done
        echo --help >> all.opts; sort -u -o all.opts all.opts
        test_cmp all.opts man.opts || { echo "man page differs for $cmd"; return 1; }
    done < commands
'

test_expect_success 'positional arguments shown the same in help and man SYNOPSIS' '
    while read -r cmd; do
        page=$BUILD_DIR/man/e2b-$(echo "$cmd" | tr " " -).1
        e2b help $cmd | sed -n "1s/^usage: //p" > help.syn &&
        MANWIDTH=300 man -l "$page" 2>/dev/null | sed -n "/^SYNOPSIS/{n;p}" | sed "s/^ *//" > man.syn &&
        test_cmp help.syn man.syn || { echo "synopsis differs for $cmd"; return 1; }
    done < commands
'

test_expect_success 'every man source has a command in the table' '
    tr " " - < commands > pages &&
    for src in "$SRC_DIR"/man/e2b-*.1.scd; do
        page=$(basename "$src" .1.scd | sed "s/^e2b-//")
        grep -qx -- "$page" pages || { echo "stale man page $src"; return 1; }
    done
'

test_expect_success 'bash completion lists a group'"'"'s verbs, by name and by alias' '
    cat > comp.bash <<-\EOF &&
	. "$1"
	COMP_WORDS=(e2b $2 ""); COMP_CWORD=$3; _e2b; printf "%s\n" "${COMPREPLY[@]}"
	EOF
    for g in $(sed -n "s/^\([a-z]*\) .*/\1/p" commands | sort -u); do
        bash comp.bash "$SRC_DIR/completions/e2b.bash" "$g" 2 > got &&
        grep "^$g " commands | awk "NF==2{print \$2}" | sort > want &&
        sort got | grep -Fx -f want > got.verbs &&
        test_cmp want got.verbs || return 1
    done &&
    if grep -q "^sandbox " commands; then
        bash comp.bash "$SRC_DIR/completions/e2b.bash" sbx 2 | sort > sbx &&
        bash comp.bash "$SRC_DIR/completions/e2b.bash" sandbox 2 | sort > sandbox &&
        test_cmp sandbox sbx && test_grep "^create$" sbx && test_grep "^exec$" sbx
    fi
'

test_expect_success 'bash completion offers a command'"'"'s options' '
    bash comp.bash "$SRC_DIR/completions/e2b.bash" "auth login --w" 3 > got &&
    echo --with-api-key > want && test_cmp want got
'

test_expect_success 'zsh and fish completion scripts load' '
    zsh -n "$SRC_DIR/completions/_e2b" &&
    fish --no-execute "$SRC_DIR/completions/e2b.fish"
'

test_expect_success 'global options work before and after the command' '
    e2b --json auth info > a.json && e2b auth info --json > b.json && test_cmp a.json b.json &&
    python3 -c "import json,sys; json.load(open(\"a.json\"))"
'

test_expect_success 'a bad --format is a usage error' '
    test_expect_code 2 e2b auth info --format xml 2>err && test_grep "unknown format" err
'

test_expect_success 'a closed stdout is an error, not silent success' '
    if [ -w /dev/full ]; then test_expect_code 1 e2b help auth login >/dev/full 2>err; fi
'

test_expect_success 'libcurl, libarchive and libgit2 are opened only when used, not at start' '
    LD_DEBUG=libs e2b --version 2>libs >/dev/null &&
    test_grep "libjansson" libs && test_grep -v "libcurl\|libarchive\|libgit2" libs &&
    port=$(free_port) &&
    LD_DEBUG=libs test_expect_code 1 e2b auth login --api-key e2b_0123456789abcdef0123456789abcdef01234567 --api-url "http://127.0.0.1:$port" 2>libs >/dev/null &&
    test_grep "libcurl" libs && test_grep "cannot reach" libs
'

test_done
