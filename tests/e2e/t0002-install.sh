#!/bin/sh
# make install: the binary, the guest agent, man pages and completions land
# where each consumer looks, under DESTDIR and PREFIX.
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'make install honours DESTDIR and PREFIX' '
    make -s -C "$SRC_DIR" B="$BUILD_DIR" install DESTDIR="$TRASH/root" PREFIX=/opt/e2b >/dev/null &&
    test -x "$TRASH/root/opt/e2b/bin/e2b" &&
    test -x "$TRASH/root/opt/e2b/lib/e2b/envd" &&
    test -f "$TRASH/root/opt/e2b/share/man/man1/e2b.1" &&
    test -f "$TRASH/root/opt/e2b/share/man/man1/e2b-auth-login.1" &&
    test -f "$TRASH/root/opt/e2b/share/bash-completion/completions/e2b" &&
    test -f "$TRASH/root/opt/e2b/share/zsh/site-functions/_e2b" &&
    test -f "$TRASH/root/opt/e2b/share/fish/vendor_completions.d/e2b.fish"
'

test_expect_success 'the installed binary runs and man finds its pages' '
    "$TRASH/root/opt/e2b/bin/e2b" --version | grep -q "^e2b " &&
    MANPATH="$TRASH/root/opt/e2b/share/man" man -w e2b-auth-login | grep -q "/opt/e2b/share/man/man1/e2b-auth-login.1"
'

test_expect_success 'the guest agent is static: it runs in any root filesystem' '
    { file "$TRASH/root/opt/e2b/lib/e2b/envd" 2>/dev/null | grep -q "statically linked" ||
      ! ldd "$TRASH/root/opt/e2b/lib/e2b/envd" >/dev/null 2>&1; }
'

test_expect_success 'a link named envd runs the guest agent applet' '
    ln -s "$E2B" "$TRASH/envd" &&
    "$TRASH/envd" --help | grep -q "usage: e2b envd"
'

test_done
