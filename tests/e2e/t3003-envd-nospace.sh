#!/bin/sh
# envd: an upload bigger than the free space is 507, leaves no partial file,
# keeps an existing file intact, and envd keeps serving.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-envd.sh"

if ! test_have_root; then
    test_skip 'uploads on a full tmpfs' 'needs root to mount a tmpfs'
    test_done
fi
M=$TRASH/small
mkdir -p "$M"
if ! mount -t tmpfs -o size=4m tmpfs "$M" 2>/dev/null; then
    test_skip 'uploads on a full tmpfs' 'cannot mount a tmpfs here'
    test_done
fi
test_atexit "umount -l '$M'"
envd_start
head -c 8000000 /dev/urandom >"$TRASH/big"

test_expect_success 'octet-stream upload larger than the tmpfs is 507' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        --data-binary @"$TRASH/big" "$ENVD_URL/files?path=$M/big.bin") &&
    expect_status "$st" 507 && test ! -e "$M/big.bin" && test -z "$(ls -A "$M")" && envd_alive
'

test_expect_success 'multipart upload larger than the tmpfs is 507' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -F "file=@$TRASH/big;filename=big.bin" \
        "$ENVD_URL/files?path=$M/sub/big.bin") &&
    expect_status "$st" 507 && test ! -e "$M/sub/big.bin" && test -z "$(ls -A "$M/sub" 2>/dev/null)" && envd_alive
'

test_expect_success 'gzip upload expanding past the free space is 507' '
    head -c 20000000 /dev/zero | gzip -1 >"$TRASH/zeros.gz" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        -H "Content-Encoding: gzip" --data-binary @"$TRASH/zeros.gz" "$ENVD_URL/files?path=$M/z.bin") &&
    expect_status "$st" 507 && test ! -e "$M/z.bin" && envd_alive
'

test_expect_success 'a failed overwrite keeps the old file' '
    echo keep >"$M/keep.txt" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        --data-binary @"$TRASH/big" "$ENVD_URL/files?path=$M/keep.txt") &&
    expect_status "$st" 507 && test "$(cat "$M/keep.txt")" = keep
'

# Uploads stream to disk: envd's peak RSS stays below the file's size.
if [ -z "${E2B_TEST_ASAN:-}" ]; then
test_expect_success 'an 8 MB upload (octet-stream, multipart, gzip) never sits in memory' '
    hwm() { awk "/^VmHWM/ {print \$2}" /proc/$ENVD_PID/status; } &&
    echo 5 >/proc/$ENVD_PID/clear_refs &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        --data-binary @"$TRASH/big" "$ENVD_URL/files?path=$TRASH/up/big.bin") &&
    expect_status "$st" 200 && cmp "$TRASH/big" "$TRASH/up/big.bin" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -F "file=@$TRASH/big;filename=big.bin" \
        "$ENVD_URL/files?path=$TRASH/up/mp.bin") &&
    expect_status "$st" 200 && cmp "$TRASH/big" "$TRASH/up/mp.bin" &&
    gzip -1 -c "$TRASH/big" >"$TRASH/big.gz" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        -H "Content-Encoding: gzip" --data-binary @"$TRASH/big.gz" "$ENVD_URL/files?path=$TRASH/up/gz.bin") &&
    expect_status "$st" 200 && cmp "$TRASH/big" "$TRASH/up/gz.bin" &&
    echo "VmHWM $(hwm) kB" && test "$(hwm)" -lt 6144
'
fi

test_expect_success 'a small upload still works afterwards on the same connection pool' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        --data small "$ENVD_URL/files?path=$M/small.txt") &&
    expect_status "$st" 200 && test "$(cat "$M/small.txt")" = small
'

test_done
