#!/bin/sh
# e2b serve's /volumes, /volumecontent, /secrets and PUT /sandboxes/{id}/network:
# status codes and error bodies; each volume's token for its files only;
# remote e2b volume commands through the server.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

KEY=$(e2b key create -q --name tests) || { echo "Bail out! cannot create a key"; exit 1; }
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
{ e2b serve --listen 127.0.0.1:$PORT > "$TRASH/serve.log" 2>&1 & } && echo $! > "$TRASH/serve.pid" &&
    test_atexit "kill \$(cat $TRASH/serve.pid)" && wait_for 50 curl -sf -o /dev/null "$URL/health" ||
    { echo "Bail out! serve did not start"; exit 1; }
test_atexit "e2b --api-url '' sandbox kill --all"

api() { # method path [body] -> status; body in $TRASH/out
    curl -s -o "$TRASH/out" -w '%{http_code}' -X "$1" -H "X-API-Key: $KEY" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$URL$2"
}
vc() { # token method path-and-query [curl args] -> status of /volumecontent; body in $TRASH/out
    local tok=$1 m=$2 p=$3; shift 3
    curl -s -o "$TRASH/out" -w '%{http_code}' -X "$m" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$URL/volumecontent/$p"
}
field() { python3 -c "import json,sys; d=json.load(open('$TRASH/out')); v=eval(sys.argv[1]); print(v if isinstance(v, str) else json.dumps(v))" "$1"; }

test_expect_success '/volumes: create, get (with token), list (without), errors' '
    test "$(api POST /volumes "{\"name\":\"v1\"}")" = 201 && V1=$(field "d[\"volumeID\"]") && T1=$(field "d[\"token\"]") &&
    echo "$V1 $T1" > v1 && test "$(field "d[\"name\"]")" = v1 &&
    test "$(api POST /volumes "{\"name\":\"v2\",\"quotaMB\":32}")" = 201 && echo "$(field "d[\"volumeID\"]") $(field "d[\"token\"]")" > v2 &&
    test "$(field "d[\"quotaMB\"]")" = 32 &&
    test "$(api GET /volumes/$V1)" = 200 && test "$(field "d[\"token\"]")" = "$T1" &&
    test "$(api GET /volumes)" = 200 && test "$(field "sorted(v[\"name\"] for v in d)")" = "[\"v1\", \"v2\"]" &&
    test "$(field "any(\"token\" in v for v in d)")" = false &&
    test "$(api POST /volumes "{\"name\":\"v1\"}")" = 409 &&
    test "$(api POST /volumes "{}")" = 400 && test "$(api POST /volumes "{\"name\":\"../x\"}")" = 400 &&
    test "$(api POST /volumes "{\"name\":\"q\",\"quotaMB\":1}")" = 400 &&
    test "$(api GET /volumes/nope)" = 404 && test "$(api DELETE /volumes/nope)" = 404 &&
    test "$(api PUT /volumes/$V1)" = 405 && test "$(api GET /volumes/$V1/x)" = 404 &&
    test "$(curl -s -o /dev/null -w "%{http_code}" "$URL/volumes")" = 401
'

test_expect_success '/volumecontent: its own token only; dir, file, path; .. refused' '
    read V1 T1 < v1 && read V2 T2 < v2 &&
    test "$(vc "" GET "$V1/dir?path=/")" = 401 &&
    test "$(vc "$T2" GET "$V1/dir?path=/")" = 401 &&
    test "$(vc "$T1" GET "$V2/dir?path=/")" = 401 &&
    test "$(vc "$T1" GET "nope/dir?path=/")" = 404 &&
    test "$(vc "$T1" GET "$V1/bogus?path=/")" = 404 &&
    test "$(vc "$T1" POST "$V1/dir?path=/a/b&force=true")" = 201 && test "$(field "d[\"type\"]")" = directory &&
    test "$(vc "$T1" POST "$V1/dir?path=/a")" = 409 &&
    printf "x%.0s" $(seq 1 1000) > k && test "$(vc "$T1" PUT "$V1/file?path=/a/b/k.txt&mode=384" --data-binary @k)" = 200 &&
    test "$(field "[d[\"size\"], d[\"mode\"], d[\"path\"]]")" = "[1000, 384, \"/a/b/k.txt\"]" &&
    test "$(vc "$T1" PUT "$V1/file?path=/chunked" -H "Transfer-Encoding: chunked" --data-binary @k)" = 200 &&
    test "$(vc "$T1" GET "$V1/file?path=/a/b/k.txt")" = 200 && test_cmp k out &&
    test "$(vc "$T1" GET "$V1/file?path=/chunked")" = 200 && test_cmp k out &&
    test "$(vc "$T1" GET "$V1/path?path=/a/b/k.txt")" = 200 && test "$(field "d[\"name\"]")" = k.txt &&
    test "$(vc "$T1" PATCH "$V1/path?path=/a/b/k.txt" --data-binary "{\"mode\":420}")" = 200 && test "$(field "d[\"mode\"]")" = 420 &&
    test "$(vc "$T1" GET "$V1/dir?path=/&depth=3")" = 200 && test "$(field "len(d)")" = 4 &&
    test "$(vc "$T1" GET "$V1/file?path=/a/../../volume.json")" = 403 &&
    test "$(vc "$T1" GET "$V1/file?path=/a")" = 400 &&
    test "$(vc "$T1" GET "$V1/file?path=/nope")" = 404 &&
    test "$(vc "$T1" DELETE "$V1/path?path=/a")" = 204 && test "$(vc "$T1" GET "$V1/path?path=/a")" = 404 &&
    test "$(vc "$T1" DELETE "$V1/path?path=/")" = 400 &&
    test "$(vc "$T1" POST "$V1/file?path=/x")" = 405
'

test_expect_success '/volumecontent: a client that waits for 100 Continue gets it and sends its body' '
    read V1 T1 < v1 && head -c 3000000 /dev/urandom > mid &&
    test "$(vc "$T1" PUT "$V1/file?path=/mid" -H "Expect: 100-continue" --data-binary @mid -v 2> verbose)" = 200 &&
    test_grep "HTTP/1.1 100 Continue" verbose &&
    test "$(vc "$T1" GET "$V1/file?path=/mid")" = 200 && test_cmp mid out &&
    test "$(vc "$T1" DELETE "$V1/path?path=/mid")" = 204
'

test_expect_success '/volumecontent: the quota (507) leaves nothing behind' '
    read V2 T2 < v2 && head -c 40000000 /dev/zero > big &&
    test "$(vc "$T2" PUT "$V2/file?path=/big" --data-binary @big)" = 507 &&
    test "$(vc "$T2" GET "$V2/dir?path=/")" = 200 && test "$(field "len(d)")" = 0
'

test_expect_success 'e2b volume through the server (remote backend): ls, cp, rm' '
    echo remote > r.txt && e2b --api-url "$URL" --api-key "$KEY" volume cp r.txt v1:/remote.txt &&
    test "$(e2b --api-url "$URL" --api-key "$KEY" volume cp v1:/remote.txt -)" = remote &&
    e2b --api-url "$URL" --api-key "$KEY" volume ls v1 > ls && test_grep "/remote.txt" ls &&
    e2b --api-url "$URL" --api-key "$KEY" volume list > list && test_grep v2 list &&
    e2b --api-url "$URL" --api-key "$KEY" volume rm v2 && test "$(api GET /volumes)" = 200 &&
    test "$(field "[v[\"name\"] for v in d]")" = "[\"v1\"]"
'

test_expect_success 'a volume in use is 409 to delete; volumeMounts on create' '
    read V1 T1 < v1 &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"volumeMounts\":[{\"name\":\"v1\",\"path\":\"/mnt/v\"}]}")" = 201 &&
    id=$(field "d[\"sandboxID\"]") &&
    test "$(api GET /sandboxes/$id)" = 200 && test "$(field "d[\"volumeMounts\"]")" = "[{\"name\": \"v1\", \"path\": \"/mnt/v\"}]" &&
    test "$(api DELETE /volumes/$V1)" = 409 && test_grep "in use by sandbox $id" out &&
    test "$(api DELETE /sandboxes/$id)" = 204 && test "$(api DELETE /volumes/$V1)" = 204
'

test_expect_success '/secrets: create, list and get without values, update, delete, errors' '
    test "$(api POST /secrets "{\"name\":\"Api-Key\",\"value\":\"hunter2-sekrit\",\"metadata\":{\"a\":\"b\"}}")" = 201 &&
    S=$(field "d[\"secretID\"]") && test "$(field "d[\"name\"]")" = api-key && test "$(field "d[\"currentVersion\"]")" = 1 &&
    test_grep -v "hunter2" out &&
    test "$(api GET /secrets)" = 200 && test_grep -v "hunter2" out && test "$(field "d[0][\"secretID\"]")" = "$S" &&
    test "$(api GET "/secrets?limit=0")" = 400 &&
    test "$(api GET /secrets/api-key)" = 200 && test "$(field "sorted(d)")" = "[\"createdAt\", \"currentVersion\", \"metadata\", \"name\", \"secretID\", \"updatedAt\"]" &&
    test "$(api POST /secrets/$S "{\"value\":\"second\"}")" = 200 && test "$(field "d[\"currentVersion\"]")" = 2 &&
    test "$(api POST /secrets "{\"name\":\"api-key\",\"value\":\"x\"}")" = 409 &&
    test "$(api POST /secrets "{\"name\":\"x\"}")" = 400 &&
    test "$(api POST /secrets "{\"name\":\"a{b\",\"value\":\"x\"}")" = 400 &&
    test "$(api POST /secrets "{\"name\":\"m\",\"value\":\"x\",\"metadata\":{\"k\":1}}")" = 400 &&
    ! grep -rq "hunter2\|second" "$E2B_DATA_DIR/serve" &&
    test "$(api DELETE /secrets/$S)" = 204 && test "$(api GET /secrets/$S)" = 404 && test "$(api DELETE /secrets/$S)" = 404 &&
    test "$(api PUT /secrets)" = 405
'

test_expect_success 'PUT /sandboxes/{id}/network: checked, 404, 409 without a network' '
    test "$(api PUT /sandboxes/nope/network "{}")" = 404 &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"allow_internet_access\":false}")" = 201 &&
    id=$(field "d[\"sandboxID\"]") &&
    test "$(api PUT /sandboxes/$id/network "{\"allowOut\":[\"1.1.1.1\"]}")" = 409 && test_grep "without internet access" out &&
    test "$(api PUT /sandboxes/$id/network "{\"denyOut\":[\"a.test\"]}")" = 400 &&
    test "$(api PUT /sandboxes/$id/network "{\"egressProxy\":{\"address\":\"p:1\"}}")" = 400 &&
    test "$(api PUT /sandboxes/$id/network "[]")" = 400 &&
    test "$(api POST /sandboxes/$id/network "{}")" = 405 &&
    test "$(api DELETE /sandboxes/$id)" = 204
'

test_done
