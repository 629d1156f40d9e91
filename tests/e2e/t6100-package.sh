#!/bin/sh
# make deb: a Debian package with the binary, the guest agent, man pages,
# completions and the systemd unit for e2b serve.
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'make deb builds a package with what e2b needs' '
    # the sources, not the build trees (another make may be writing there)
    mkdir "$TRASH/src" &&
    tar -C "$SRC_DIR" --exclude="./build*" --exclude=./tests/sdk/node_modules -cf - . | tar -C "$TRASH/src" -xf - &&
    make -s -C "$TRASH/src" B="$TRASH/b" deb > make.log 2>&1 &&
    deb=$(ls "$TRASH"/b/e2b_*.deb) &&
    dpkg-deb -c "$deb" > contents &&
    test_grep "./usr/bin/e2b$" contents &&
    test_grep "./usr/lib/e2b/envd$" contents &&
    test_grep "./usr/share/man/man1/e2b-serve.1$" contents &&
    test_grep "./usr/share/bash-completion/completions/e2b$" contents &&
    test_grep "./lib/systemd/system/e2b-serve.service$" contents &&
    dpkg-deb -f "$deb" Depends > depends &&
    test_grep "libcurl4 (>= " depends && test_grep "libgit2-" depends && test_grep "libarchive" depends && test_grep "libc6 (>= " depends &&
    test_grep e2fsprogs depends &&
    dpkg-deb -I "$deb" > info && test_grep " postinst " info && test_grep " postrm " info
'

test_expect_success 'Depends come from dpkg-shlibdeps, not a hand-kept list' '
    grep -q "^Depends: @DEPENDS@" "$SRC_DIR/packaging/debian/control.in" &&
    ! grep -q "libgit2\|libcurl" "$SRC_DIR/packaging/debian/control.in"
'

test_expect_success 'the unit passes systemd-analyze verify (its ExecStart on the packaged binary)' '
    { command -v systemd-analyze > /dev/null || { echo "no systemd-analyze"; false; }; } &&
    deb=$(ls "$TRASH"/b/e2b_*.deb) && dpkg-deb -x "$deb" x &&
    sed "s|/usr/bin/e2b|$TRASH/x/usr/bin/e2b|" x/lib/systemd/system/e2b-serve.service > e2b-serve.service &&
    systemd-analyze verify --man=no ./e2b-serve.service 2> verify.err &&
    ! grep -q "e2b-serve" verify.err &&
    x/usr/bin/e2b serve --help > /dev/null
'

test_expect_success 'the systemd unit runs e2b serve' '
    grep -q "^ExecStart=/usr/bin/e2b serve --listen" "$SRC_DIR/packaging/e2b-serve.service" &&
    grep -q "^KillMode=process" "$SRC_DIR/packaging/e2b-serve.service" &&
    grep -q "^Delegate=yes" "$SRC_DIR/packaging/e2b-serve.service"
'

test_done
