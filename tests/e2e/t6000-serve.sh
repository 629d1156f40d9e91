#!/bin/sh
# e2b serve: keys, E2B's status codes for bad input (and it keeps serving),
# our own CLI in remote mode through the API and the envd router, and
# `auth login` checked against it.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

KEY=$(e2b key create -q --name tests) || { echo "Bail out! cannot create a key"; exit 1; }
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
e2b serve --listen 127.0.0.1:$PORT > "$TRASH/serve.log" 2>&1 &
echo $! > "$TRASH/serve.pid"
test_atexit "kill \$(cat $TRASH/serve.pid)"
wait_for 50 curl -sf -o /dev/null "$URL/health" || { echo "Bail out! serve did not start"; exit 1; }

api() { # method path [body] -> status on stdout, body in $TRASH/out
    curl -s -o "$TRASH/out" -w '%{http_code}' -X "$1" -H "X-API-Key: $KEY" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$URL$2"
}
alive() { test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 204; }

test_expect_success 'keys: made once, listed masked, stored hashed' '
    echo "$KEY" | grep -Eq "^e2b_[0-9a-f]{32}$" &&
    e2b key list > keys && test_grep tests keys && test_grep -v "$KEY" keys &&
    test_grep -v "$KEY" "$E2B_DATA_DIR/serve/keys.json" &&
    test "$(stat -c %a "$E2B_DATA_DIR/serve/keys.json")" = 600
'

test_expect_success 'missing or wrong key: 401 with E2B'"'"'s error body' '
    test "$(curl -s -o out -w "%{http_code}" "$URL/v2/sandboxes")" = 401 &&
    python3 -c "import json; d=json.load(open(\"out\")); assert d[\"code\"]==401 and d[\"message\"]" &&
    test "$(curl -s -o out -w "%{http_code}" -H "X-API-Key: e2b_0000" "$URL/v2/sandboxes")" = 401 &&
    alive
'

test_expect_success 'malformed JSON, oversized body, bad timeouts, unknown template: 4xx and still serving' '
    test "$(api POST /sandboxes "{not json")" = 400 && test_grep "JSON" "$TRASH/out" &&
    head -c 2000000 /dev/zero | tr "\0" a > big &&
    test "$(curl -s -o out -w "%{http_code}" -H "X-API-Key: $KEY" --data-binary @big "$URL/sandboxes")" = 413 &&
    test "$(api POST /sandboxes "{\"templateID\":\"host\",\"timeout\":0}")" = 400 &&
    test_grep "greater than 0" "$TRASH/out" &&
    test "$(api POST /sandboxes "{\"templateID\":\"host\",\"timeout\":999999}")" = 400 &&
    test "$(api POST /sandboxes "{\"templateID\":\"nope-nope\"}")" = 404 &&
    test "$(api POST /sandboxes "{\"timeout\":5}")" = 400 &&
    test "$(api GET /sandboxes/aaaaaaaaaaaaaaaaaaaa)" = 404 &&
    test "$(api DELETE /sandboxes/aaaaaaaaaaaaaaaaaaaa)" = 404 &&
    test "$(api GET /nowhere)" = 404 &&
    alive
'

test_expect_success 'create, list with pagination, pause twice is 409, kill' '
    test "$(api POST /sandboxes "{\"templateID\":\"host\",\"timeout\":60,\"metadata\":{\"t\":\"serve\"}}")" = 201 &&
    id=$(python3 -c "import json; print(json.load(open(\"$TRASH/out\"))[\"sandboxID\"])") &&
    test "$(api POST /sandboxes "{\"templateID\":\"host\",\"timeout\":60,\"metadata\":{\"t\":\"serve\"}}")" = 201 &&
    id2=$(python3 -c "import json; print(json.load(open(\"$TRASH/out\"))[\"sandboxID\"])") &&
    curl -s -D hdr -o page1 -H "X-API-Key: $KEY" "$URL/v2/sandboxes?limit=1&metadata=t%3Dserve" &&
    token=$(sed -n "s/^[Xx]-[Nn]ext-[Tt]oken: *\([^\r]*\).*/\1/p" hdr) && test -n "$token" &&
    curl -s -o page2 -H "X-API-Key: $KEY" "$URL/v2/sandboxes?limit=1&metadata=t%3Dserve&nextToken=$token" &&
    python3 -c "import json; a=json.load(open(\"page1\")); b=json.load(open(\"page2\")); assert len(a)==1 and len(b)==1 and a[0][\"sandboxID\"]!=b[0][\"sandboxID\"]" &&
    test "$(api POST /sandboxes/$id/pause)" = 204 &&
    test "$(api POST /sandboxes/$id/pause)" = 409 &&
    test "$(api POST /v2/sandboxes/$id/connect "{\"timeout\":30}")" = 201 &&
    test "$(api POST /v2/sandboxes/$id/connect "{\"timeout\":30}")" = 200 &&
    test "$(api DELETE /sandboxes/$id)" = 204 && test "$(api DELETE /sandboxes/$id2)" = 204 &&
    sbx_gone "$id" && sbx_gone "$id2"
'

test_expect_success 'the router: envd through E2b-Sandbox-Id headers and <port>-<id>.<domain> hosts' '
    test "$(api POST /sandboxes "{\"templateID\":\"host\",\"timeout\":60}")" = 201 &&
    id=$(python3 -c "import json; print(json.load(open(\"$TRASH/out\"))[\"sandboxID\"])") &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -H "E2b-Sandbox-Id: $id" -H "E2b-Sandbox-Port: 49983" "$URL/health")" = 204 &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -H "Host: 49983-$id.e2b.local" "$URL/health")" = 204 &&
    test "$(curl -s -o out -w "%{http_code}" -H "E2b-Sandbox-Id: aaaaaaaaaaaaaaaaaaaa" "$URL/health")" = 502 &&
    api DELETE /sandboxes/$id > /dev/null && alive
'

test_expect_success 'our CLI in remote mode: create, list, exec, kill through the server' '
    export E2B_API_URL=$URL E2B_SANDBOX_URL=$URL E2B_API_KEY=$KEY &&
    id=$(e2b sandbox create -d host --timeout 60 -e FROM=remote) &&
    e2b sandbox list > list && test_grep "$id" list &&
    test "$(e2b sandbox exec "$id" "echo \$FROM")" = remote &&
    test "$(echo piped | e2b sandbox exec "$id" cat)" = piped &&
    test_expect_code 3 e2b sandbox exec "$id" "exit 3" &&
    e2b sandbox info "$id" --json | grep -q "\"state\": \"running\"" &&
    e2b template list > tpl && test_grep host tpl &&
    e2b sandbox kill "$id" && sbx_gone "$id"
'

test_expect_success 'auth login succeeds against e2b serve with a key it knows, and refuses others' '
    e2b auth login --api-key "$KEY" --api-url "$URL" 2>err && test_grep "Logged in to $URL" err &&
    e2b auth info --json | grep -q "\"backend\": \"remote\"" &&
    test_must_fail e2b auth login --api-key e2b_deadbeef --api-url "$URL" 2>err &&
    test_grep "refused the key" err &&
    grep -q "$KEY" "$HOME/.e2b/config.json"
'

test_expect_success 'sandboxes outlive a restart of the server; its create helper ends with it' '
    test "$(api POST /sandboxes "{\"templateID\":\"host\",\"timeout\":60}")" = 201 &&
    id=$(python3 -c "import json; print(json.load(open(\"$TRASH/out\"))[\"sandboxID\"])") &&
    helper=$(pgrep -P "$(cat "$TRASH/serve.pid")" -x e2b-serve-spawn) && test -n "$helper" &&
    kill "$(cat "$TRASH/serve.pid")" && ! wait_for 30 alive &&
    wait_for 50 sh -c "! kill -0 $helper" &&
    e2b --api-url "" sandbox exec "$id" true &&
    { e2b serve --listen 127.0.0.1:$PORT > serve2.log 2>&1 & echo $! > "$TRASH/serve.pid"; } &&
    wait_for 50 alive &&
    test "$(api GET /sandboxes/$id)" = 200 &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -H "E2b-Sandbox-Id: $id" "$URL/health")" = 204 &&
    test "$(api DELETE /sandboxes/$id)" = 204
'

test_done
