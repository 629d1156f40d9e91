#!/bin/sh
# e2b serve's REST API against E2B's: create defaults (v1 and v2), revoked
# keys, /timeout, /refreshes, /resume, metrics, logs, list parameters,
# template endpoints (store templates by alias and ID), a dead sandbox
# through the API and the router, and one sandbox's long stream not holding
# up another's calls.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

sbx_tiny_template tiny ctx "echo from-store > ctx/root/etc/marker" > tid ||
    { echo "Bail out! cannot build a template"; exit 1; }
TID=$(tail -n 1 tid)
sbx_tiny_template doomed ctx2 > /dev/null || { echo "Bail out! cannot build a template"; exit 1; }
KEY=$(e2b key create -q --name tests) || { echo "Bail out! cannot create a key"; exit 1; }
start_serve() { # name port [options]
    local name=$1 port=$2; shift 2
    e2b serve --listen 127.0.0.1:$port "$@" > "$TRASH/$name.log" 2>&1 &
    echo $! > "$TRASH/$name.pid"
    test_atexit "kill \$(cat $TRASH/$name.pid)"
    wait_for 50 curl -sf -o /dev/null "http://127.0.0.1:$port/health"
}
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
start_serve main $PORT || { echo "Bail out! serve did not start"; exit 1; }
test_atexit "e2b --api-url '' sandbox kill --all"

api() { # method path [body] -> status; body in $TRASH/out, headers in $TRASH/hdr
    curl -s -D "$TRASH/hdr" -o "$TRASH/out" -w '%{http_code}' -X "$1" -H "X-API-Key: $KEY" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "${U:-$URL}$2"
}
field() { # python expression on the JSON answer d: strings as they are, the rest as JSON
    python3 -c "import json,sys; d=json.load(open('$TRASH/out')); v=eval(sys.argv[1]); print(v if isinstance(v, str) else json.dumps(v))" "$1"
}
left() { # seconds until the sandbox's endAt
    api GET /sandboxes/$1 > /dev/null &&
    python3 -c "import json,datetime as d; e=json.load(open('$TRASH/out'))['endAt']; print(int((d.datetime.fromisoformat(e.replace('Z','+00:00'))-d.datetime.now(d.timezone.utc)).total_seconds()))"
}
envd() { # id [token] -> status of envd's GET /envs through the router
    curl -s -o "$TRASH/envd.out" -w '%{http_code}' -H "E2b-Sandbox-Id: $1" ${2:+-H "X-Access-Token: $2"} "$URL/envs"
}

test_expect_success 'v2 create: a token always, 300 s, internet allowed; envd refuses calls without the token' '
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\"}")" = 201 &&
    id=$(field "d[\"sandboxID\"]") && tok=$(field "d[\"envdAccessToken\"]") && test -n "$tok" &&
    test "$(field "d[\"domain\"]")" = null &&
    l=$(left $id) && test "$l" -gt 280 && test "$l" -le 300 &&
    test "$(field "d[\"allowInternetAccess\"]")" = true &&
    test "$(envd $id)" = 401 && test "$(envd $id wrong-token)" = 401 &&
    test "$(envd $id $tok)" = 200 && test_grep "$id" envd.out &&
    api DELETE /sandboxes/$id
'

test_expect_success 'v1 create: a token only with secure, 15 s by default; --deny-internet turns the default' '
    test "$(api POST /sandboxes "{\"templateID\":\"host\"}")" = 201 &&
    id=$(field "d[\"sandboxID\"]") && test "$(field "d.get(\"envdAccessToken\")")" = null &&
    l=$(left $id) && test "$l" -le 15 && test "$(envd $id)" = 200 &&
    test "$(api POST /sandboxes "{\"templateID\":\"host\",\"secure\":true,\"timeout\":60}")" = 201 &&
    id2=$(field "d[\"sandboxID\"]") && test -n "$(field "d[\"envdAccessToken\"]")" && test "$(envd $id2)" = 401 &&
    P2=$(free_port) && start_serve deny $P2 --deny-internet &&
    test "$(U=http://127.0.0.1:$P2 api POST /v2/sandboxes "{\"templateID\":\"host\"}")" = 201 &&
    id3=$(field "d[\"sandboxID\"]") && test "$(field "d[\"allowInternetAccess\"]")" = false &&
    test "$(U=http://127.0.0.1:$P2 api POST /v2/sandboxes "{\"templateID\":\"host\",\"allow_internet_access\":true}")" = 201 &&
    id4=$(field "d[\"sandboxID\"]") && test "$(field "d[\"allowInternetAccess\"]")" = true &&
    for i in $id $id2 $id3 $id4; do api DELETE /sandboxes/$i > /dev/null || return 1; done
'

test_expect_success 'create: bad types and fields this server cannot honour are 400, named' '
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"secure\":\"yes\"}")" = 400 && test_grep "secure" out &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"network\":{\"egressProxy\":{\"address\":\"p:1080\"}}}")" = 400 &&
    test_grep "network.egressProxy" out &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"network\":{\"denyOut\":[\"example.com\"]}}")" = 400 &&
    test_grep "denyOut entry .example.com. is a domain" out &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"network\":{\"allowOut\":[\"10.0.0.0/33\"]}}")" = 400 &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"volumeMounts\":[{\"name\":\"v\"}]}")" = 400 &&
    test_grep "volumeMounts" out &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"volumeMounts\":[{\"name\":\"nope\",\"path\":\"/v\"}]}")" = 404 &&
    test_grep "volume .nope. not found" out &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"autoResume\":{\"enabled\":true}}")" = 400 &&
    test_grep "autoResume needs autoPause" out &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"metadata\":{\"a\":1}}")" = 400 &&
    test "$(api POST /v2/sandboxes "[1]")" = 400 &&
    test "$(api GET /v2/sandboxes)" = 200 && test "$(field "len(d)")" = 0
'

test_expect_success 'creates at the same time: all made, in parallel, each its own' '
    for i in 1 2 3 4 5 6 7 8; do
        curl -s -o "par$i" -w "%{http_code}" -X POST -H "X-API-Key: $KEY" --data-binary "{\"templateID\":\"host\",\"metadata\":{\"n\":\"$i\"}}" "$URL/v2/sandboxes" > "par$i.code" &
    done && wait &&
    for i in 1 2 3 4 5 6 7 8; do test "$(cat par$i.code)" = 201 || return 1; done &&
    test "$(cat par? | python3 -c "import json,sys; print(len({json.loads(l)[\"sandboxID\"] for l in sys.stdin.read().replace(\"}{\", \"}\n{\").splitlines()}))")" = 8 &&
    test "$(api GET "/v2/sandboxes?metadata=n%3D3")" = 200 && test "$(field "len(d)")" = 1 &&
    for i in 1 2 3 4 5 6 7 8; do
        id=$(python3 -c "import json; print(json.load(open(\"par$i\"))[\"sandboxID\"])") &&
        api DELETE /sandboxes/$id > /dev/null || return 1
    done
'

test_expect_success 'a revoked key is refused at once' '
    k2=$(e2b key create -q --name second) &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -H "X-API-Key: $k2" "$URL/v2/sandboxes")" = 200 &&
    kid=$(e2b --json key list | python3 -c "import json,sys; print([k[\"id\"] for k in json.load(sys.stdin) if k[\"name\"]==\"second\"][0])") &&
    e2b key revoke "$kid" &&
    test "$(curl -s -o out -w "%{http_code}" -H "X-API-Key: $k2" "$URL/v2/sandboxes")" = 401 &&
    test_grep "Invalid API key" out &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -H "X-API-Key: $KEY" "$URL/v2/sandboxes")" = 200
'

test_expect_success '/timeout: required, 1 s to 24 h, overwrites (may shorten)' '
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"timeout\":600}")" = 201 && id=$(field "d[\"sandboxID\"]") &&
    echo $id > sbx &&
    test "$(api POST /sandboxes/$id/timeout "{}")" = 400 && test_grep "required" out &&
    test "$(api POST /sandboxes/$id/timeout "{\"timeout\":0}")" = 400 && test_grep "greater than 0" out &&
    test "$(api POST /sandboxes/$id/timeout "{\"timeout\":86401}")" = 400 && test_grep "24 hours" out &&
    test "$(api POST /sandboxes/$id/timeout "{\"timeout\":\"60\"}")" = 400 &&
    test "$(api POST /sandboxes/$id/timeout "{\"timeout\":120}")" = 204 &&
    l=$(left $id) && test "$l" -gt 100 && test "$l" -le 120 &&
    test "$(api POST /sandboxes/aaaaaaaaaaaaaaaaaaaa/timeout "{\"timeout\":120}")" = 404
'

test_expect_success '/refreshes: 0 to 3600 s, at least 15 s, never shortens' '
    id=$(cat sbx) &&
    test "$(api POST /sandboxes/$id/refreshes "{\"duration\":20}")" = 204 &&
    l=$(left $id) && test "$l" -gt 100 &&
    test "$(api POST /sandboxes/$id/refreshes "{\"duration\":900}")" = 204 &&
    l=$(left $id) && test "$l" -gt 880 && test "$l" -le 900 &&
    test "$(api POST /sandboxes/$id/refreshes "{}")" = 204 && l=$(left $id) && test "$l" -gt 880 &&
    test "$(api POST /sandboxes/$id/refreshes "{\"duration\":3601}")" = 400 &&
    test "$(api POST /sandboxes/$id/refreshes "{\"duration\":-1}")" = 400 &&
    test "$(api POST /sandboxes/$id/timeout "{\"timeout\":5}")" = 204 &&
    test "$(api POST /sandboxes/$id/refreshes "{\"duration\":0}")" = 204 &&
    l=$(left $id) && test "$l" -gt 10 && test "$l" -le 15 &&
    test "$(api POST /sandboxes/$id/timeout "{\"timeout\":600}")" = 204
'

test_expect_success 'pause, /resume (409 when running), /connect; refresh of a paused sandbox is 404' '
    id=$(cat sbx) &&
    test "$(api POST /sandboxes/$id/resume "{}")" = 409 && test_grep "not paused" out &&
    test "$(api POST /sandboxes/$id/pause)" = 204 &&
    test "$(envd $id $(api GET /sandboxes/$id >/dev/null; field "d[\"envdAccessToken\"]"))" = 409 &&
    python3 -c "import json; d=json.load(open(\"envd.out\")); assert d==dict(sandboxId=\"$id\", message=\"The sandbox is paused\", code=409, canAutoResume=False), d" &&
    test "$(api POST /sandboxes/$id/refreshes "{\"duration\":60}")" = 404 &&
    test "$(api POST /sandboxes/$id/resume "{\"timeout\":300}")" = 201 && test "$(field "d[\"sandboxID\"]")" = $id &&
    test "$(api POST /v2/sandboxes/$id/connect "{\"timeout\":300}")" = 200 &&
    test "$(api GET /sandboxes/$id)" = 200 && test "$(field "d[\"state\"]")" = running
'

test_expect_success 'metrics: one sandbox (start/end), many at once' '
    id=$(cat sbx) &&
    test "$(api GET /sandboxes/$id/metrics)" = 200 &&
    test "$(field "d[0][\"cpuCount\"] > 0 and d[0][\"memTotal\"] > 0 and \"timestampUnix\" in d[0]")" = true &&
    test "$(api GET "/sandboxes/$id/metrics?start=99999999999")" = 200 && test "$(field "len(d)")" = 0 &&
    test "$(api GET "/sandboxes/$id/metrics?start=abc")" = 400 &&
    test "$(api GET "/sandboxes/metrics?sandbox_ids=$id,aaaaaaaaaaaaaaaaaaaa")" = 200 &&
    test "$(field "list(d[\"sandboxes\"])")" = "[\"$id\"]" &&
    test "$(api GET /sandboxes/metrics)" = 400
'

test_expect_success 'logs: v1 {logs:[{timestamp,line}], logEntries}, v2 filters' '
    id=$(cat sbx) &&
    test "$(api GET /sandboxes/$id/logs)" = 200 &&
    test "$(field "sorted(d)")" = "[\"logEntries\", \"logs\"]" &&
    test "$(field "all(set(x)=={\"timestamp\",\"line\"} for x in d[\"logs\"]) and len(d[\"logs\"])==len(d[\"logEntries\"])>0")" = true &&
    test "$(field "all({\"level\",\"logger\",\"message\"} <= set(json.loads(x[\"line\"])) for x in d[\"logs\"])")" = true &&
    test "$(api GET "/v2/sandboxes/$id/logs?search=started")" = 200 &&
    test "$(field "len(d[\"logs\"])>0 and all(\"started\" in x[\"message\"] for x in d[\"logs\"])")" = true &&
    test "$(api GET "/v2/sandboxes/$id/logs?level=error")" = 200 &&
    test "$(field "all(x[\"level\"]==\"error\" for x in d[\"logs\"])")" = true &&
    test "$(api GET "/v2/sandboxes/$id/logs?limit=1&direction=backward")" = 200 && test "$(field "len(d[\"logs\"])")" = 1 &&
    test "$(api GET "/v2/sandboxes/$id/logs?cursor=99999999999999")" = 200 &&
    test "$(field "[x for x in d[\"logs\"] if x[\"fields\"].get(\"logger\")==\"supervisor\"]")" = "[]" &&
    test "$(api GET "/v2/sandboxes/$id/logs?level=loud")" = 400 &&
    test "$(api GET "/v2/sandboxes/$id/logs?direction=sideways")" = 400 &&
    test "$(api GET "/v2/sandboxes/$id/logs?limit=1001")" = 400
'

test_expect_success 'list: validated parameters, order, startedAfter, paging, X-Total-Running' '
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"timeout\":300}")" = 201 && id2=$(field "d[\"sandboxID\"]") &&
    id=$(cat sbx) &&
    test "$(api GET "/v2/sandboxes?order=asc")" = 200 && test "$(field "[s[\"sandboxID\"] for s in d]")" = "[\"$id\", \"$id2\"]" &&
    grep -qi "^X-Total-Running: 2" hdr &&
    test "$(api GET "/v2/sandboxes?order=desc")" = 200 && test "$(field "[s[\"sandboxID\"] for s in d]")" = "[\"$id2\", \"$id\"]" &&
    test "$(api GET "/v2/sandboxes")" = 200 && test "$(field "[s[\"sandboxID\"] for s in d]")" = "[\"$id2\", \"$id\"]" &&
    test "$(api GET "/v2/sandboxes?limit=1")" = 200 && test "$(field "d[0][\"sandboxID\"]")" = $id2 &&
    tok=$(sed -n "s/^[Xx]-[Nn]ext-[Tt]oken: *\([^\r]*\).*/\1/p" hdr) && test -n "$tok" &&
    test "$(api GET "/v2/sandboxes?limit=1&nextToken=$tok")" = 200 && test "$(field "d[0][\"sandboxID\"]")" = $id &&
    ! grep -qi "^X-Next-Token" hdr &&
    test "$(api GET "/v2/sandboxes?startedAfter=2999-01-01T00:00:00Z")" = 200 && test "$(field "len(d)")" = 0 &&
    test "$(api GET "/v2/sandboxes?startedAfter=2000-01-01T00:00:00%2B02:00")" = 200 && test "$(field "len(d)")" = 2 &&
    at=$(api GET /sandboxes/$id2 >/dev/null && field "d[\"startedAt\"]") &&
    test "$(api GET "/v2/sandboxes?startedAfter=$at")" = 200 && test "$(field "[s[\"sandboxID\"] for s in d]")" = "[\"$id2\"]" &&
    test "$(api GET "/v2/sandboxes?startedAfter=yesterday")" = 400 &&
    test "$(api GET "/v2/sandboxes?state=bogus")" = 400 &&
    test "$(api GET "/v2/sandboxes?limit=abc")" = 400 &&
    test "$(api GET "/v2/sandboxes?limit=0")" = 400 &&
    test "$(api GET "/v2/sandboxes?limit=101")" = 400 &&
    test "$(api GET "/v2/sandboxes?nextToken=xyz")" = 400 &&
    test "$(api GET "/v2/sandboxes?order=random")" = 400 &&
    api DELETE /sandboxes/$id2 > /dev/null
'

test_expect_success 'templates: list, /v2 paging, by ID with builds, aliases only by alias, delete' '
    test "$(api GET /templates)" = 200 && test "$(field "sorted(t[\"aliases\"][0] for t in d)")" = "[\"doomed\", \"host\", \"tiny\"]" &&
    test "$(api GET "/v2/templates?limit=2")" = 200 && test "$(field "len(d)")" = 2 && grep -qi "^X-Next-Token: 2" hdr &&
    test "$(api GET "/v2/templates?limit=2&nextToken=2")" = 200 && test "$(field "len(d)")" = 1 &&
    test "$(api GET /templates/$TID)" = 200 && test "$(field "d[\"builds\"][0][\"status\"]")" = ready &&
    test "$(api GET /templates/host)" = 200 && test "$(field "len(d[\"builds\"])")" = 1 &&
    test "$(api GET /templates/aliases/tiny)" = 200 && test "$(field "d[\"templateID\"]")" = "$TID" &&
    test "$(field "d[\"public\"]")" = false &&
    test "$(api GET /templates/aliases/$TID)" = 404 && test_grep "alias" out &&
    test "$(api GET /templates/aliases/nope)" = 404 &&
    test "$(api GET /templates/nope)" = 404 &&
    test "$(api DELETE /templates/host)" = 403 &&
    test "$(api DELETE /templates/doomed)" = 204 && test "$(api GET /templates/doomed)" = 404 &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"doomed\"}")" = 404
'

test_expect_success 'store templates by alias and by ID, reached through the router' '
    test "$(api POST /v2/sandboxes "{\"templateID\":\"tiny\",\"timeout\":60}")" = 201 &&
    a=$(field "d[\"sandboxID\"]") && ta=$(field "d[\"envdAccessToken\"]") && test "$(field "d[\"templateID\"]")" = "$TID" &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"$TID\",\"timeout\":60}")" = 201 &&
    b=$(field "d[\"sandboxID\"]") && tb=$(field "d[\"envdAccessToken\"]") && test "$(field "d[\"alias\"]")" = tiny &&
    test "$(envd $a $ta)" = 200 && test_grep "$TID" envd.out &&
    test "$(envd $b $tb)" = 200 &&
    api DELETE /sandboxes/$a > /dev/null && api DELETE /sandboxes/$b > /dev/null
'

test_expect_success 'a dead sandbox (its supervisor killed): 404 from the API, 502 from the router' '
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"timeout\":120}")" = 201 && id=$(field "d[\"sandboxID\"]") &&
    sup=$(python3 -c "import json; print(json.load(open(\"$E2B_RUNTIME_DIR/sandboxes/$id/state.json\"))[\"supervisorPid\"])") &&
    kill -9 "$sup" && wait_for 50 sh -c "! kill -0 $sup" &&
    test "$(api GET /sandboxes/$id)" = 404 &&
    test "$(envd $id)" = 502 && test_grep "The sandbox was not found" envd.out &&
    test "$(api DELETE /sandboxes/$id)" = 404 &&
    test "$(api GET /v2/sandboxes)" = 200 && test_grep -v "$id" out &&
    wait_for 100 sbx_gone "$id"
'

test_expect_success 'one sandbox streaming a long command does not hold up another'"'"'s calls' '
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"timeout\":120}")" = 201 &&
    b=$(field "d[\"sandboxID\"]") && tb=$(field "d[\"envdAccessToken\"]") && id=$(cat sbx) &&
    { E2B_API_URL=$URL E2B_API_KEY=$KEY timeout 60 e2b sandbox exec "$id" "echo begun; sleep 8; echo ended" > long.out 2>&1 & } &&
    wait_for 100 grep -q begun long.out &&
    t0=$(date +%s%N) &&
    for i in 1 2 3 4 5; do
        test "$(api GET /sandboxes/$b)" = 200 && test "$(envd $b $tb)" = 200 &&
        test "$(E2B_API_URL=$URL E2B_API_KEY=$KEY timeout 20 e2b sandbox exec "$b" "echo $i")" = $i || return 1
    done &&
    t1=$(date +%s%N) && test $(( (t1 - t0) / 1000000 )) -lt 6000 &&
    ! grep -q ended long.out &&
    wait_for 150 grep -q ended long.out
'

test_done
