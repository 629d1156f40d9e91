#!/bin/sh
# envd answers bad Connect and HTTP input with the right error and keeps serving.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-envd.sh"
. "$TEST_DIR/lib-http.sh"

envd_start

test_expect_success 'health answers 204' '
    envd_alive
'

test_expect_success 'malformed JSON is invalid_argument (400)' '
    st=$(rpc filesystem.Filesystem/Stat "{\"path\": ") &&
    expect_status "$st" 400 && expect_code invalid_argument && envd_alive
'

test_expect_success 'a JSON array instead of an object is invalid_argument' '
    st=$(rpc filesystem.Filesystem/Stat "[1,2]") &&
    expect_status "$st" 400 && expect_code invalid_argument && envd_alive
'

test_expect_success 'an empty unary body is invalid_argument' '
    st=$(rpc process.Process/List "") &&
    expect_status "$st" 400 && expect_code invalid_argument && envd_alive
'

test_expect_success 'unknown fields are ignored (Connect discards them)' '
    st=$(rpc filesystem.Filesystem/Stat "{\"path\":\"/\",\"bogus\":{\"x\":1}}") &&
    expect_status "$st" 200 && grep -q FILE_TYPE_DIRECTORY "$TRASH/out" && envd_alive
'

test_expect_success 'a field of the wrong type is invalid_argument' '
    st=$(rpc filesystem.Filesystem/Stat "{\"path\":42}") &&
    expect_status "$st" 400 && expect_code invalid_argument &&
    st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"/\",\"depth\":\"deep\"}") &&
    expect_status "$st" 400 && expect_code invalid_argument && envd_alive
'

test_expect_success 'proto field names (snake_case) are accepted' '
    st=$(rpc filesystem.Filesystem/GetWatcherEvents "{\"watcher_id\":\"nope\"}") &&
    expect_status "$st" 404 && expect_code not_found
'

test_expect_success 'wrong content type for a unary call is 415' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: text/plain" \
        --data "{}" "$ENVD_URL/process.Process/List") &&
    expect_status "$st" 415 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/proto" \
        --data "{}" "$ENVD_URL/process.Process/List") &&
    expect_status "$st" 415 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/connect+json" \
        --data "{}" "$ENVD_URL/process.Process/List") &&
    expect_status "$st" 415 && envd_alive
'

test_expect_success 'a unary content type on a streaming procedure is 415' '
    st=$(rpc process.Process/Start "{\"process\":{\"cmd\":\"true\"}}") &&
    expect_status "$st" 415 && envd_alive
'

test_expect_success 'GET on a procedure is 405, unknown procedure 404' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/process.Process/List") &&
    expect_status "$st" 405 &&
    st=$(rpc process.Process/Nope "{}") &&
    expect_status "$st" 404 && expect_code unimplemented &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/nowhere") &&
    expect_status "$st" 404 && envd_alive
'

test_expect_success 'a bad stream envelope ends the stream with invalid_argument' '
    printf "\000\000\000\000\377{}" >"$TRASH/bad.bin" &&
    st=$(curl -s -o "$TRASH/raw" -w "%{http_code}" -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$TRASH/bad.bin" "$ENVD_URL/process.Process/Start") &&
    unframe <"$TRASH/raw" >"$TRASH/out" &&
    expect_status "$st" 200 && grep -q "^END .*invalid_argument" "$TRASH/out" && envd_alive
'

test_expect_success 'bad JSON inside a stream envelope is invalid_argument' '
    st=$(srpc process.Process/Start "{nope") &&
    expect_status "$st" 200 && grep -q "^END .*invalid_argument" "$TRASH/out" && envd_alive
'

test_expect_success 'Start without a command is invalid_argument' '
    st=$(srpc process.Process/Start "{\"process\":{\"args\":[\"x\"]}}") &&
    grep -q "^END .*invalid_argument" "$TRASH/out" &&
    st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"true\",\"args\":[1]}}") &&
    grep -q "^END .*invalid_argument" "$TRASH/out" && envd_alive
'

test_expect_success 'Start of a missing program is not_found, missing cwd invalid_argument' '
    st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"/no/such/program\"}}") &&
    grep -q "^END .*not_found" "$TRASH/out" &&
    st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"true\",\"cwd\":\"/no/such/dir\"}}") &&
    grep -q "^END .*invalid_argument" "$TRASH/out" && envd_alive
'

test_expect_success 'Start of a non-executable file is permission_denied, of a non-program failed_precondition' '
    echo "echo hi" >"$TRASH/noexec.sh" && chmod 644 "$TRASH/noexec.sh" &&
    st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"$TRASH/noexec.sh\"}}") &&
    grep -q "^END .*permission_denied" "$TRASH/out" &&
    printf "\001\002garbage, no #! and no ELF" >"$TRASH/junk" && chmod 755 "$TRASH/junk" &&
    st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"$TRASH/junk\"}}") &&
    grep -q "^END .*failed_precondition.*Exec format error" "$TRASH/out" &&
    st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"$TRASH/noexec.sh/x\"}}") &&
    grep -q "^END .*failed_precondition" "$TRASH/out" && envd_alive
'

# start_bg N JSON PORT: a Start stream in the background into $TRASH/fd.N
start_bg() {
    frame "$2" >"$TRASH/fd.$1.req"
    curl -s -N -m 120 -o "$TRASH/fd.$1" -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$TRASH/fd.$1.req" "http://127.0.0.1:$3/process.Process/Start" &
    echo $! >>"$TRASH/fd.pids"
}
answered() { unframe <"$TRASH/fd.$1" | grep -q "start\|^END"; }

test_expect_success 'out of descriptors: Start is resource_exhausted and envd recovers' '
    lport=$(free_port) &&
    { sh -c "ulimit -n 40 && exec \"$ENVD_BIN\" --listen 127.0.0.1:$lport" >"$TRASH/fd-envd.log" 2>&1 & } &&
    lpid=$! && test_when_finished "kill $lpid" && : >"$TRASH/fd.pids" &&
    wait_for 50 curl -sf -o /dev/null "http://127.0.0.1:$lport/health" &&
    i=1 && full= &&
    while [ $i -le 20 ] && [ -z "$full" ]; do
        start_bg $i "{\"process\":{\"cmd\":\"sleep\",\"args\":[\"60\"]},\"stdin\":false}" $lport
        wait_for 100 answered $i || { echo "Start $i got no answer"; cat "$TRASH/fd-envd.log"; return 1; }
        unframe <"$TRASH/fd.$i" | grep -q "^END .*resource_exhausted.*Too many open files" && full=$i
        i=$((i + 1))
    done &&
    test -n "$full" && echo "resource_exhausted at Start $full" &&
    kill -0 $lpid &&
    curl -s -X POST -H "Content-Type: application/json" -d "{}" "http://127.0.0.1:$lport/process.Process/List" |
        python3 -c "import json,sys; [print(p[\"pid\"]) for p in json.load(sys.stdin)[\"processes\"]]" >"$TRASH/pids" &&
    test -s "$TRASH/pids" &&
    while read -r p; do
        curl -s -o /dev/null -X POST -H "Content-Type: application/json" \
            -d "{\"process\":{\"pid\":$p},\"signal\":\"SIGNAL_SIGKILL\"}" "http://127.0.0.1:$lport/process.Process/SendSignal"
    done <"$TRASH/pids" &&
    wait $(cat "$TRASH/fd.pids") && : >"$TRASH/fd.pids" &&
    start_bg ok "{\"process\":{\"cmd\":\"echo\",\"args\":[\"again\"]}}" $lport && wait $(cat "$TRASH/fd.pids") &&
    unframe <"$TRASH/fd.ok" | grep -q "$(printf "again\n" | base64)"
'

test_expect_success 'a bad Connect-Timeout-Ms is invalid_argument' '
    st=$(rpc process.Process/List "{}" -H "Connect-Timeout-Ms: soon") &&
    expect_status "$st" 400 && expect_code invalid_argument
'

test_expect_success 'Start streams start, data and end events' '
    st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"echo out; echo err >&2; exit 3\"]}}") &&
    expect_status "$st" 200 &&
    grep -q "\"start\":{\"pid\":" "$TRASH/out" &&
    grep -q "\"stdout\":\"b3V0Cg==\"" "$TRASH/out" &&
    grep -q "\"stderr\":\"ZXJyCg==\"" "$TRASH/out" &&
    grep -q "\"exitCode\":3" "$TRASH/out" && grep -q "exit status 3" "$TRASH/out" &&
    grep -qx "END {}" "$TRASH/out"
'

# not_listed ARG: no listed process has ARG among its args (it was reaped)
not_listed() { [ "$(rpc process.Process/List "{}")" = 200 ] && ! grep -q "\"$1\"" "$TRASH/out"; }

test_expect_success 'Connect-Timeout-Ms kills the process: deadline_exceeded' '
    st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"sleep\",\"args\":[\"30\"]}}" -H "Connect-Timeout-Ms: 300") &&
    grep -q "^END .*deadline_exceeded" "$TRASH/out" &&
    wait_for 300 not_listed 30
'

test_expect_success 'selectors of unknown processes are not_found' '
    st=$(rpc process.Process/SendSignal "{\"process\":{\"pid\":999999},\"signal\":\"SIGNAL_SIGKILL\"}") &&
    expect_status "$st" 404 && expect_code not_found &&
    st=$(rpc process.Process/SendInput "{\"process\":{\"tag\":\"nope\"},\"input\":{\"stdin\":\"aGkK\"}}") &&
    expect_status "$st" 404 && expect_code not_found &&
    st=$(srpc process.Process/Connect "{\"process\":{\"pid\":999999}}") &&
    grep -q "^END .*not_found" "$TRASH/out" &&
    st=$(rpc process.Process/SendSignal "{\"process\":{}}") &&
    expect_status "$st" 400 && expect_code invalid_argument && envd_alive
'

test_expect_success 'ListDir: any depth on a small tree; past 64 levels or 50000 entries resource_exhausted' '
    mkdir -p "$TRASH/small/a/b" && : >"$TRASH/small/a/b/f" &&
    st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"$TRASH/small\",\"depth\":4000000000}") &&
    expect_status "$st" 200 && test "$(grep -o "\"name\":" "$TRASH/out" | wc -l)" = 3 &&
    deep=$TRASH/deep && python3 -c "import os,sys; os.makedirs(sys.argv[1] + \"/d\" * 70)" "$deep" &&
    st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"$deep\",\"depth\":100}") &&
    expect_status "$st" 429 && expect_code resource_exhausted && grep -q "deeper than 64" "$TRASH/out" &&
    st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"$deep\",\"depth\":60}") &&
    expect_status "$st" 200 && test "$(grep -o "\"name\":" "$TRASH/out" | wc -l)" = 60 &&
    mkdir "$TRASH/wide" && python3 -c "import os,sys
for i in range(50001): os.close(os.open(\"%s/f%d\" % (sys.argv[1], i), os.O_CREAT | os.O_WRONLY))" "$TRASH/wide" &&
    st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"$TRASH/wide\"}") &&
    expect_status "$st" 429 && grep -q "more than 50000 entries" "$TRASH/out" &&
    rm "$TRASH/wide/f0" &&
    st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"$TRASH/wide\"}") && expect_status "$st" 200 &&
    rm -rf "$TRASH/wide" && envd_alive
'

test_expect_success 'filesystem errors: not_found, invalid_argument, already_exists' '
    st=$(rpc filesystem.Filesystem/Stat "{\"path\":\"/no/such/file\"}") &&
    expect_status "$st" 404 && expect_code not_found &&
    echo x >"$TRASH/file" &&
    st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"$TRASH/file\"}") &&
    expect_status "$st" 400 && expect_code invalid_argument &&
    st=$(rpc filesystem.Filesystem/MakeDir "{\"path\":\"$TRASH\"}") &&
    expect_status "$st" 409 && expect_code already_exists &&
    st=$(rpc filesystem.Filesystem/Remove "{\"path\":\"$TRASH/nothing\"}") &&
    expect_status "$st" 404 && expect_code not_found && envd_alive
'

test_expect_success 'an unknown user is unauthenticated (401)' '
    st=$(rpc filesystem.Filesystem/Stat "{\"path\":\"/\"}" -H "Authorization: Basic $(printf "nosuchuser:" | base64)") &&
    expect_status "$st" 401 && expect_code unauthenticated &&
    st=$(rpc filesystem.Filesystem/Stat "{\"path\":\"/\"}" -H "Authorization: Basic !!!") &&
    expect_status "$st" 401 && expect_code unauthenticated &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=/etc/hostname&username=nosuchuser") &&
    expect_status "$st" 401 && envd_alive
'

test_expect_success 'a body over the limit is 413' '
    head -c 17000000 /dev/zero >"$TRASH/big" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/json" \
        --data-binary @"$TRASH/big" "$ENVD_URL/process.Process/List") &&
    expect_status "$st" 413 && envd_alive
'

test_expect_success 'malformed HTTP is 400 and the server stays up' '
    { printf "GARBAGE\r\n\r\n" | curl -s --max-time 5 -o "$TRASH/out" telnet://127.0.0.1:$ENVD_PORT || true; } &&
    grep -q "400 Bad Request" "$TRASH/out" &&
    { printf "POST /process.Process/List HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" |
        curl -s --max-time 5 -o "$TRASH/out" telnet://127.0.0.1:$ENVD_PORT || true; } &&
    grep -q "400 Bad Request" "$TRASH/out" &&
    { printf "GET /health HTTP/1.1\r\nContent-Length: -5\r\n\r\n" |
        curl -s --max-time 5 -o "$TRASH/out" telnet://127.0.0.1:$ENVD_PORT || true; } &&
    grep -q "400 Bad Request" "$TRASH/out" && envd_alive
'

test_expect_success 'ambiguous framing is refused as e2b serve refuses it (t6020): 400, connection closed' '
    test "$(http_framing $ENVD_PORT te-and-cl)" = "400 closed" &&
    test "$(http_framing $ENVD_PORT cl-after-te)" = "400 closed" &&
    test "$(http_framing $ENVD_PORT two-lengths)" = "400 closed" &&
    test "$(http_framing $ENVD_PORT plain)" = "405 204 open" && envd_alive
'

# cors URL [curl args]: the response carries the CORS headers
cors() {
    curl -s -D "$TRASH/hdr" -o /dev/null -H "Origin: http://browser.example" "$@" &&
    grep -q "^Access-Control-Allow-Origin: \*" "$TRASH/hdr" &&
    grep -q "^Access-Control-Expose-Headers: .*Content-Disposition" "$TRASH/hdr"
}

test_expect_success 'every response carries CORS headers, errors and the preflight too' '
    cors "$ENVD_URL/health" && cors "$ENVD_URL/nowhere" && cors "$ENVD_URL/files?path=/no/such" &&
    cors -X POST -H "Content-Type: application/json" -d "{}" "$ENVD_URL/process.Process/List" &&
    cors -X POST -H "Content-Type: application/json" -d "{" "$ENVD_URL/process.Process/List" &&
    cors -X POST -H "Content-Type: text/plain" -d "{}" "$ENVD_URL/process.Process/List" &&
    cors -X OPTIONS -H "Access-Control-Request-Method: POST" "$ENVD_URL/process.Process/Start" &&
    grep -q "^Access-Control-Allow-Methods: .*POST" "$TRASH/hdr" &&
    { printf "GARBAGE\r\n\r\n" | curl -s --max-time 5 -o "$TRASH/out" telnet://127.0.0.1:$ENVD_PORT || true; } &&
    grep -q "400 Bad Request" "$TRASH/out" && grep -q "^Access-Control-Allow-Origin: \*" "$TRASH/out"
'

test_expect_success 'a client that hangs up mid-stream does not hurt' '
    { curl -s --max-time 1 -o /dev/null -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$TRASH/req.bin" "$ENVD_URL/process.Process/Start" || true; } &&
    frame "{\"process\":{\"cmd\":\"sleep\",\"args\":[\"2\"]}}" >"$TRASH/sleep.bin" &&
    { curl -s --max-time 0.5 -o /dev/null -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$TRASH/sleep.bin" "$ENVD_URL/process.Process/Start" || true; } &&
    envd_alive
'

test_expect_success 'upload errors: content type, missing path, gzip junk' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: text/plain" \
        --data "x" "$ENVD_URL/files?path=$TRASH/u.txt") &&
    expect_status "$st" 415 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        --data "x" "$ENVD_URL/files") &&
    expect_status "$st" 400 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        -H "Content-Encoding: gzip" --data "not gzip at all" "$ENVD_URL/files?path=$TRASH/u.txt") &&
    expect_status "$st" 400 && test ! -e "$TRASH/u.txt" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: multipart/form-data; boundary=XX" \
        --data-binary "--XX\r\nbroken" "$ENVD_URL/files?path=$TRASH/u.txt") &&
    expect_status "$st" 400 && test ! -e "$TRASH/u.txt" && envd_alive
'

test_expect_success 'a path or header that is not UTF-8 gets its error, envd keeps serving' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$TRASH/%ff") &&
    expect_status "$st" 404 && grep -q "cannot open" "$TRASH/out" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "$(printf "Content-Type: text/\377")" \
        --data "x" "$ENVD_URL/files?path=$TRASH/u.txt") &&
    expect_status "$st" 415 && envd_alive
'

test_expect_success 'download errors: directory 400, missing 404, no acceptable encoding 406' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$TRASH") &&
    expect_status "$st" 400 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" "$ENVD_URL/files?path=$TRASH/missing") &&
    expect_status "$st" 404 &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -H "Accept-Encoding: br, identity;q=0" \
        "$ENVD_URL/files?path=$TRASH/file") &&
    expect_status "$st" 406 && envd_alive
'

test_expect_success 'bad metadata headers are 400' '
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/octet-stream" \
        -H "X-Metadata-k: $(head -c 5000 /dev/zero | tr "\0" a)" --data "x" "$ENVD_URL/files?path=$TRASH/m.txt") &&
    expect_status "$st" 400 && test ! -e "$TRASH/m.txt" && envd_alive
'

test_done
