#!/bin/sh
# envd: "../" and symlink paths resolve predictably; users cannot reach what
# their permissions do not allow.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-envd.sh"

envd_start
D=$TRASH/data
mkdir -p "$D/sub" "$D/real"
echo secret >"$D/real/target.txt"
ln -s "$D/real" "$D/link"
ln -s "$D/real/target.txt" "$D/filelink"
ln -s "$D/nowhere" "$D/dangling"
ln -s "$D/loop1" "$D/loop2"
ln -s "$D/loop2" "$D/loop1"
NOBODY="Authorization: Basic $(printf "nobody:" | base64)"

test_expect_success '../ in a path is resolved lexically' '
    st=$(rpc filesystem.Filesystem/Stat "{\"path\":\"$D/sub/../real/./target.txt\"}") &&
    expect_status "$st" 200 && grep -q "\"path\":\"$D/real/target.txt\"" "$TRASH/out"
'

test_expect_success '../ cannot climb above /' '
    st=$(rpc filesystem.Filesystem/Stat "{\"path\":\"/../../../../etc/..\"}") &&
    expect_status "$st" 200 && grep -q "\"path\":\"/\"" "$TRASH/out"
'

test_expect_success 'an upload to a/../b lands at b' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        --data "dotdot" "$ENVD_URL/files?path=$D/sub/../up.txt") &&
    expect_status "$st" 200 && test "$(cat "$D/up.txt")" = dotdot &&
    grep -q "\"path\":\"$D/up.txt\"" "$TRASH/out"
'

test_expect_success 'a multipart part names its file with unquoted parameters too' '
    printf -- "--XX\r\nContent-Disposition: form-data; name=file; filename=$D/unquoted.txt\r\n\r\nbare\r\n--XX--\r\n" \
        >"$TRASH/mp.bin" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: multipart/form-data; boundary=XX" \
        --data-binary @"$TRASH/mp.bin" "$ENVD_URL/files") &&
    expect_status "$st" 200 && test "$(cat "$D/unquoted.txt")" = bare
'

test_expect_success 'relative paths and ~ resolve in the user home' '
    st=$(rpc filesystem.Filesystem/Stat "{\"path\":\"~/../root/..\"}") &&
    expect_status "$st" 200 && grep -q "\"path\":\"/\"" "$TRASH/out"
'

test_expect_success 'Stat of a symlink reports type and target' '
    st=$(rpc filesystem.Filesystem/Stat "{\"path\":\"$D/link\"}") &&
    expect_status "$st" 200 && grep -q FILE_TYPE_SYMLINK "$TRASH/out" &&
    grep -q "\"symlinkTarget\":\"$D/real\"" "$TRASH/out" &&
    st=$(rpc filesystem.Filesystem/Stat "{\"path\":\"$D/dangling\"}") &&
    expect_status "$st" 200 && grep -q "\"symlinkTarget\":\"$D/nowhere\"" "$TRASH/out"
'

test_expect_success 'ListDir follows a symlinked directory' '
    st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"$D/link\"}") &&
    expect_status "$st" 200 && grep -q "target.txt" "$TRASH/out"
'

test_expect_success 'a symlink loop is invalid_argument, envd keeps serving' '
    st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"$D/loop1\"}") &&
    expect_status "$st" 400 && expect_code invalid_argument &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$D/loop1") &&
    expect_status "$st" 400 && envd_alive
'

test_expect_success 'a dangling symlink downloads as 404' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$D/dangling") &&
    expect_status "$st" 404 && envd_alive
'

test_expect_success 'download and upload through a file symlink use its target' '
    test "$(curl -s "$ENVD_URL/files?path=$D/filelink")" = secret &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        --data "changed" "$ENVD_URL/files?path=$D/filelink") &&
    expect_status "$st" 200 && test -L "$D/filelink" && test "$(cat "$D/real/target.txt")" = changed
'

EVIL=$(printf "a\r\nX-Injected: yes")
printf evil >"$D/$EVIL"
printf quoted >"$D/q\"uote.txt"
test_expect_success 'a file name with CR/LF or quotes cannot inject download headers' '
    st=$(curl -s -D "$TRASH/hdr" -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$D/a%0D%0AX-Injected%3A%20yes") &&
    expect_status "$st" 200 && test "$(cat "$TRASH/out")" = evil &&
    ! grep -qi "^X-Injected" "$TRASH/hdr" &&
    grep -F "Content-Disposition: attachment; filename=\"a__X-Injected: yes\"; filename*=UTF-8" "$TRASH/hdr" | grep -qF "a%0D%0AX-Injected%3A%20yes" &&
    st=$(curl -s -D "$TRASH/hdr" -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$D/q%22uote.txt") &&
    expect_status "$st" 200 && grep -F "filename=\"q_uote.txt\"; filename*=UTF-8" "$TRASH/hdr" | grep -qF "q%22uote.txt" &&
    envd_alive
'

if test_have_root && grep -q "^nobody:" /etc/passwd; then
    chmod 700 "$D/real"
    test_expect_success 'nobody cannot read through ../ into a private dir (403)' '
        st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$D/sub/../real/target.txt&username=nobody") &&
        expect_status "$st" 403 &&
        st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$D/link/target.txt&username=nobody") &&
        expect_status "$st" 403 && envd_alive
    '
    test_expect_success 'nobody cannot write into a private dir via a symlink (403)' '
        st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
            --data "x" "$ENVD_URL/files?path=$D/link/evil.txt&username=nobody") &&
        expect_status "$st" 403 && test ! -e "$D/real/evil.txt" &&
        st=$(rpc filesystem.Filesystem/Remove "{\"path\":\"$D/real/target.txt\"}" -H "$NOBODY") &&
        expect_status "$st" 403 && expect_code permission_denied && test -e "$D/real/target.txt" &&
        st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"$D/link\"}" -H "$NOBODY") &&
        expect_status "$st" 403 && expect_code permission_denied && envd_alive
    '
    test_expect_success 'files nobody uploads are owned by nobody' '
        chmod 755 "$TRASH" "$D" && chmod 777 "$D/sub" &&
        st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
            --data "mine" "$ENVD_URL/files?path=$D/sub/new/own.txt&username=nobody") &&
        expect_status "$st" 200 && test "$(stat -c %U "$D/sub/new/own.txt")" = nobody &&
        test "$(stat -c %U "$D/sub/new")" = nobody
    '
    test_expect_success 'processes run as the requested user' '
        st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"echo \$(id -un) \$(id -G) \$HOME \$USER \$LOGNAME\"],\"cwd\":\"/\"}}" -H "$NOBODY") &&
        grep -q "\"stdout\":\"$(printf "nobody 65534 /nonexistent nobody nobody\n" | base64)\"" "$TRASH/out"
    '
    P=$TRASH/pub
    mkdir -p "$P/open" "$P/secret" && chmod 755 "$P" "$P/open" && chmod 700 "$P/secret"
    echo pw >"$P/secret/password.txt"
    test_expect_success 'a recursive watch as nobody skips what nobody cannot read' '
        frame "{\"path\":\"$P\",\"recursive\":true,\"includeEntry\":true}" >"$TRASH/pw.req" &&
        { { curl -s -N --max-time 5 -o "$TRASH/pw.raw" -X POST -H "Content-Type: application/connect+json" \
            -H "$NOBODY" --data-binary @"$TRASH/pw.req" "$ENVD_URL/filesystem.Filesystem/WatchDir" || true; } & } &&
        wait_for 30 test -s "$TRASH/pw.raw" &&
        echo changed >>"$P/secret/password.txt" && echo new >"$P/secret/more.txt" &&
        echo seen >"$P/open/seen.txt" && wait &&
        unframe <"$TRASH/pw.raw" >"$TRASH/out" &&
        grep -q "\"name\":\"open/seen.txt\"" "$TRASH/out" &&
        ! grep -q "password\|more.txt" "$TRASH/out" &&
        st=$(srpc filesystem.Filesystem/WatchDir "{\"path\":\"$P/secret\"}" -H "$NOBODY") &&
        grep -q "^END .*permission_denied" "$TRASH/out" &&
        st=$(rpc filesystem.Filesystem/CreateWatcher "{\"path\":\"$P/secret\"}" -H "$NOBODY") &&
        expect_status "$st" 403 && envd_alive
    '
    chmod 755 "$D/real"
else
    test_skip 'permission checks as nobody' 'needs root and a nobody user'
fi

# A throwaway user with a supplementary group, seen only by an envd in its
# own mount namespace (passwd and group bind-mounted), so the host's
# accounts stay untouched.
if test_have_root && unshare -m true 2>/dev/null; then
    U=$TRASH/u && mkdir -p "$U/home" "$U/shared" && chown 4242:4242 "$U/home" && chmod 755 "$TRASH" "$U"
    cp /etc/passwd "$U/passwd" && cp /etc/group "$U/group"
    echo "e2bt:x:4242:4242:e2b test:$U/home:/bin/sh" >>"$U/passwd"
    printf "e2bt:x:4242:\ne2bextra:x:4343:nobody,e2bt\n" >>"$U/group"
    echo "for the group" >"$U/shared/g.txt" && chown 0:4343 "$U/shared" "$U/shared/g.txt" &&
        chmod 770 "$U/shared" && chmod 640 "$U/shared/g.txt"
    UPORT=$(free_port)
    UURL=http://127.0.0.1:$UPORT
    unshare -m sh -c "mount --bind '$U/passwd' /etc/passwd && mount --bind '$U/group' /etc/group &&
        exec '$ENVD_BIN' --listen 127.0.0.1:$UPORT" >"$TRASH/u-envd.log" 2>&1 &
    test_atexit "kill $!"
    E2BT="Authorization: Basic $(printf "e2bt:" | base64)"
    test_expect_success 'a user with a supplementary group: uid, gids, HOME, USER, cwd' '
        wait_for 50 curl -sf -o /dev/null "$UURL/health" &&
        ENVD_URL=$UURL srpc process.Process/Start "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"echo \$(id -un) \$(id -u) \$(id -G) \$HOME \$USER \$LOGNAME \$(pwd)\"]}}" -H "$E2BT" &&
        grep -q "\"stdout\":\"$(printf "e2bt 4242 4242 4343 $U/home e2bt e2bt $U/home\n" | base64 -w0)\"" "$TRASH/out"
    '
    test_expect_success 'the supplementary group opens files for /files and processes, uploads get the user ids' '
        test "$(curl -s -H "$E2BT" "$UURL/files?path=$U/shared/g.txt")" = "for the group" &&
        st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -H "Authorization: Basic $(printf "nobody:" | base64)" "$UURL/files?path=$U/shared/g.txt") &&
        test "$st" = 200 &&
        grep -v "^e2bextra" "$U/group" >"$U/group.new" && cat "$U/group.new" >"$U/group" &&
        echo "e2bextra:x:4343:e2bt" >>"$U/group" &&
        st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -H "Authorization: Basic $(printf "nobody:" | base64)" "$UURL/files?path=$U/shared/g.txt") &&
        test "$st" = 403 &&
        ENVD_URL=$UURL srpc process.Process/Start "{\"process\":{\"cmd\":\"cat\",\"args\":[\"$U/shared/g.txt\"]}}" -H "$E2BT" &&
        grep -q "\"stdout\":\"$(printf "for the group\n" | base64)\"" "$TRASH/out" &&
        st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" -H "$E2BT" \
            --data mine "$UURL/files?path=$U/home/new/up.txt") &&
        test "$st" = 200 && test "$(stat -c %u:%g "$U/home/new/up.txt" "$U/home/new" | sort -u)" = "4242:4242"
    '
else
    test_skip 'a user with a supplementary group' 'needs root and unshare -m'
fi

test_done
