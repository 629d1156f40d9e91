#!/bin/sh
# envd with an access token (set by /init): X-Access-Token on every route but
# /health, /init and /files (token or signature); signatures and their expiry.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-envd.sh"

envd_start
TOKEN=tok-$$-secret
H="X-Access-Token: $TOKEN"
echo "hello" >"$TRASH/f.txt"
F=$TRASH/f.txt

test_expect_success 'before /init, no token is needed' '
    st=$(rpc process.Process/List "{}") && expect_status "$st" 200
'

test_expect_success '/init sets the token, env vars and answers 204 with the version' '
    curl -s -D "$TRASH/hdr" -o "$TRASH/out" -X POST -H "Content-Type: application/json" \
        --data "{\"accessToken\":\"$TOKEN\",\"envVars\":{\"GLOBAL_X\":\"from-init\"},\"timestamp\":\"2020-01-01T00:00:00Z\"}" \
        "$ENVD_URL/init" &&
    grep -q "^HTTP/1.1 204" "$TRASH/hdr" && grep -qi "^X-Envd-Version: [0-9]" "$TRASH/hdr"
'

test_expect_success 'health needs no token' '
    envd_alive
'

test_expect_success 'RPC without a token is unauthenticated (401)' '
    st=$(rpc process.Process/List "{}") &&
    expect_status "$st" 401 && expect_code unauthenticated &&
    st=$(rpc process.Process/List "{}" -H "X-Access-Token: wrong") &&
    expect_status "$st" 401 && expect_code unauthenticated &&
    st=$(rpc process.Process/List "{}" -H "X-Access-Token: ${TOKEN}x") &&
    expect_status "$st" 401 && envd_alive
'

test_expect_success 'RPC with the token works; /init env vars reach processes' '
    st=$(rpc process.Process/List "{}" -H "$H") && expect_status "$st" 200 &&
    st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"echo \$GLOBAL_X\"]}}" -H "$H") &&
    grep -q "\"stdout\":\"$(printf "from-init\n" | base64)\"" "$TRASH/out"
'

test_expect_success '/envs and /metrics need the token' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/envs") && expect_status "$st" 401 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/metrics") && expect_status "$st" 401 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -H "$H" "$ENVD_URL/envs") && expect_status "$st" 200 &&
    grep -q "\"GLOBAL_X\":\"from-init\"" "$TRASH/out" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -H "$H" "$ENVD_URL/metrics") && expect_status "$st" 200 &&
    grep -q "\"mem_total\"" "$TRASH/out"
'

test_expect_success '/files without token or signature is 401' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$F") && expect_status "$st" 401 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        --data x "$ENVD_URL/files?path=$TRASH/w.txt") && expect_status "$st" 401 && test ! -e "$TRASH/w.txt"
'

test_expect_success '/files with the token works' '
    test "$(curl -s -H "$H" "$ENVD_URL/files?path=$F")" = hello
'

test_expect_success 'a valid read signature downloads' '
    s=$(sig "$F" read "" "$TOKEN") &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$F&signature=$s") &&
    expect_status "$st" 200 && test "$(cat "$TRASH/out")" = hello
'

test_expect_success 'a signature with a username and a future expiry works' '
    exp=$(( $(date +%s) + 300 )) &&
    s=$(sig "$F" read root "$TOKEN" $exp) &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$F&username=root&signature=$s&signature_expiration=$exp") &&
    expect_status "$st" 200
'

test_expect_success 'a bad signature is 401' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$F&signature=v1_AAAA") &&
    expect_status "$st" 401 &&
    s=$(sig "$F" read "" "wrong-token") &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$F&signature=$s") &&
    expect_status "$st" 401 &&
    s=$(sig "$TRASH/other" read "" "$TOKEN") &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$F&signature=$s") &&
    expect_status "$st" 401 && envd_alive
'

test_expect_success 'a read signature cannot write' '
    s=$(sig "$TRASH/w.txt" read "" "$TOKEN") &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        --data x "$ENVD_URL/files?path=$TRASH/w.txt&signature=$s") &&
    expect_status "$st" 401 && test ! -e "$TRASH/w.txt"
'

test_expect_success 'a write signature uploads' '
    s=$(sig "$TRASH/w.txt" write "" "$TOKEN") &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        --data signed "$ENVD_URL/files?path=$TRASH/w.txt&signature=$s") &&
    expect_status "$st" 200 && test "$(cat "$TRASH/w.txt")" = signed
'

test_expect_success 'an expired signature is 401' '
    exp=$(( $(date +%s) - 10 )) &&
    s=$(sig "$F" read "" "$TOKEN" $exp) &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$F&signature=$s&signature_expiration=$exp") &&
    expect_status "$st" 401 && grep -q expired "$TRASH/out" &&
    s=$(sig "$F" read "" "$TOKEN" 99999999999) &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$F&signature=$s&signature_expiration=$(( $(date +%s) + 100 ))") &&
    expect_status "$st" 401 && envd_alive
'

test_expect_success 'a wrong token beside a valid signature is still 401' '
    s=$(sig "$F" read "" "$TOKEN") &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -H "X-Access-Token: nope" "$ENVD_URL/files?path=$F&signature=$s") &&
    expect_status "$st" 401
'

test_expect_success 're-/init without the token is refused, with it accepted' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/json" \
        --data "{\"accessToken\":\"stolen\"}" "$ENVD_URL/init") &&
    expect_status "$st" 401 &&
    st=$(rpc process.Process/List "{}" -H "$H") && expect_status "$st" 200 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/json" -H "$H" \
        --data "{\"defaultWorkdir\":\"/tmp\"}" "$ENVD_URL/init") &&
    expect_status "$st" 204
'

if test_have_root && grep -q "^nobody:" /etc/passwd; then
    mkdir -p "$TRASH/open" && chmod 755 "$TRASH" && chmod 777 "$TRASH/open"
    test_expect_success '/init defaultUser and defaultWorkdir: who and where requests run' '
        st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/json" -H "$H" \
            --data "{\"defaultUser\":\"nobody\",\"defaultWorkdir\":\"/tmp\"}" "$ENVD_URL/init") &&
        expect_status "$st" 204 &&
        st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"echo \$(id -un) \$(pwd) \$HOME\"]}}" -H "$H") &&
        grep -q "\"stdout\":\"$(printf "nobody /tmp /nonexistent\n" | base64)\"" "$TRASH/out" &&
        st=$(rpc filesystem.Filesystem/Stat "{\"path\":\"\"}" -H "$H") && expect_status "$st" 200 &&
        grep -q "\"path\":\"/tmp\"" "$TRASH/out" &&
        st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" -H "$H" \
            --data d "$ENVD_URL/files?path=$TRASH/open/def.txt") &&
        expect_status "$st" 200 && test "$(stat -c %U "$TRASH/open/def.txt")" = nobody &&
        st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"id\",\"args\":[\"-un\"]}}" -H "$H" \
            -H "Authorization: Basic $(printf "root:" | base64)") &&
        grep -q "\"stdout\":\"$(printf "root\n" | base64)\"" "$TRASH/out" &&
        st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/json" -H "$H" \
            --data "{\"defaultUser\":\"root\"}" "$ENVD_URL/init") && expect_status "$st" 204
    '
fi

test_expect_success 'bad /init bodies are 400' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "$H" --data "{oops" "$ENVD_URL/init") &&
    expect_status "$st" 400 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "$H" --data "{\"envVars\":{\"A\":1}}" "$ENVD_URL/init") &&
    expect_status "$st" 400 && envd_alive
'


# --init-fd: what a sandbox's supervisor hands envd instead of POST /init.
printf '{"accessToken":"fd-%s","envVars":{"FROM_FD":"yes"}}' "$$" > "$TRASH/init.json"
test_expect_success '--init-fd applies the /init body before envd listens: its token is wanted at once' '
    envd_start --init-fd 5 5<"$TRASH/init.json" &&
    st=$(rpc process.Process/List "{}") && expect_status "$st" 401 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -H "X-Access-Token: fd-$$" "$ENVD_URL/envs") &&
    expect_status "$st" 200 && grep -q "\"FROM_FD\":\"yes\"" "$TRASH/out"
'

test_expect_success 'a bad --init-fd body stops envd with a message, before it listens' '
    printf "{\"envVars\":{\"A\":1}}" > "$TRASH/bad-init.json" &&
    test_expect_code 1 "$ENVD_BIN" --unix "$TRASH/bad.sock" --no-tcp --init-fd 5 5<"$TRASH/bad-init.json" 2>err &&
    test_grep "init-fd: envVars.A: not a string" err && test ! -e "$TRASH/bad.sock" &&
    printf "{oops" > "$TRASH/bad-init.json" &&
    test_expect_code 1 "$ENVD_BIN" --unix "$TRASH/bad.sock" --no-tcp --init-fd 5 5<"$TRASH/bad-init.json" 2>err &&
    test_grep "init-fd" err &&
    test_expect_code 2 "$ENVD_BIN" --no-tcp --unix "$TRASH/bad.sock" --init-fd x 2>err && test_grep "bad --init-fd" err
'

test_done
