#!/bin/sh
# e2b serve --warm: sandboxes started ahead, hidden from the API, handed out
# to the creates they fit with the create's timeout, metadata, envs and
# token (nothing to tell them from new ones), refilled, kept across a crash
# of the server, killed at a clean stop; bad --warm values and config files.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

KEY=$(e2b key create -q --name tests) || { echo "Bail out! cannot create a key"; exit 1; }
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
start_serve() { # [options]
    e2b serve --listen 127.0.0.1:$PORT --deny-internet "$@" >> "$TRASH/serve.log" 2>&1 &
    echo $! > "$TRASH/serve.pid"
    wait_for 50 curl -sf -o /dev/null "$URL/health"
}
test_atexit "kill \$(cat $TRASH/serve.pid) 2>/dev/null; e2b --api-url '' sandbox kill --all"

api() { # method path [body] -> status; body in $TRASH/out, headers in $TRASH/hdr
    curl -s -D "$TRASH/hdr" -o "$TRASH/out" -w '%{http_code}' -X "$1" -H "X-API-Key: $KEY" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$URL$2"
}
field() {
    python3 -c "import json,sys; d=json.load(open('$TRASH/out')); v=eval(sys.argv[1]); print(v if isinstance(v, str) else json.dumps(v))" "$1"
}
warm_ids() { # the waiting warm sandboxes of pool $1, one a line
    e2b sandbox list --json | python3 -c "import json,sys; [print(s['sandboxID']) for s in json.load(sys.stdin) if s.get('warmPool') == sys.argv[1]]" "$1"
}
warm_count() { test "$(warm_ids "$1" | wc -l)" = "$2"; }

test_expect_success 'bad --warm values and config files are usage errors naming them' '
    test_expect_code 2 e2b serve --warm host 2>err && test_grep "TEMPLATE=N" err &&
    test_expect_code 2 e2b serve --warm host=0 2>err && test_grep "host=0" err &&
    test_expect_code 2 e2b serve --warm =3 2>err &&
    test_expect_code 2 e2b serve --warm host=x 2>err &&
    echo "{\"warm\": {\"host\": 2}, \"listen\": \"x\"}" > bad.json &&
    test_expect_code 2 e2b serve --config bad.json 2>err && test_grep "listen" err &&
    echo "{\"warm\": {\"host\": 0}}" > zero.json &&
    test_must_fail e2b serve --config zero.json --listen 127.0.0.1:$(free_port) 2>err && test_grep "1\.\.256" err &&
    test_must_fail e2b serve --config nosuch.json 2>err && test_grep "nosuch.json" err
'

test_expect_success 'a config file fills the pool; the API lists none of it, nor counts it' '
    echo "{\"warm\": {\"host\": 2}}" > warm.json &&
    start_serve --config warm.json &&
    wait_for 100 warm_count host 2 &&
    test "$(api GET /v2/sandboxes)" = 200 && test "$(field "len(d)")" = 0 &&
    grep -i "^X-Total-Running: 0" hdr &&
    test "$(api GET /sandboxes)" = 200 && test "$(field "len(d)")" = 0 &&
    id=$(warm_ids host | head -n 1) && test "$(api GET /sandboxes/$id)" = 404
'

test_expect_success 'a create takes a warm sandbox: its timeout, metadata, envs, token and start; the pool refills' '
    warm_ids host | sort > before &&
    t=$(date +%s) &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"timeout\":77,\"metadata\":{\"k\":\"v\"},\"envVars\":{\"WHO\":\"client\"}}")" = 201 &&
    id=$(field "d[\"sandboxID\"]") && tok=$(field "d[\"envdAccessToken\"]") &&
    grep -qx "$id" before &&
    test "$(field "d[\"metadata\"]")" = "{\"k\": \"v\"}" && test "$(field "d.get(\"warmPool\")")" = null &&
    python3 -c "import json,sys,datetime as d; o=json.load(open(\"out\")); p=lambda s: d.datetime.fromisoformat(s.replace(\"Z\",\"+00:00\")).timestamp(); assert abs(p(o[\"startedAt\"]) - $t) < 3 and abs(p(o[\"endAt\"]) - p(o[\"startedAt\"]) - 77) < 1, o" &&
    test "$(curl -s -o env.out -w "%{http_code}" -H "E2b-Sandbox-Id: $id" "$URL/envs")" = 401 &&
    test "$(curl -s -o env.out -w "%{http_code}" -H "E2b-Sandbox-Id: $id" -H "X-Access-Token: $tok" "$URL/envs")" = 200 &&
    python3 -c "import json,sys; e=json.load(open(\"env.out\")); assert e[\"WHO\"]==\"client\" and e[\"E2B_SANDBOX_ID\"]==sys.argv[1], e" "$id" &&
    test "$(e2b sandbox exec "$id" "echo \$WHO")" = client &&
    test "$(api GET "/v2/sandboxes?metadata=k%3Dv")" = 200 && test "$(field "[s[\"sandboxID\"] for s in d]")" = "[\"$id\"]" &&
    wait_for 100 warm_count host 2 && ! warm_ids host | grep -qx "$id" &&
    e2b sandbox logs "$id" > log && test_grep -v "cannot start" log &&
    api DELETE /sandboxes/$id
'

test_expect_success 'a create the pool does not fit is an ordinary create' '
    warm_ids host | sort > before &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\",\"allow_internet_access\":true}")" = 201 &&
    id=$(field "d[\"sandboxID\"]") && ! grep -qx "$id" before &&
    test "$(warm_ids host | sort)" = "$(cat before)" &&
    api DELETE /sandboxes/$id
'

test_expect_success 'a warm sandbox that ended is passed over' '
    warm_ids host > before && e2b sandbox kill $(head -n 1 before) &&
    test "$(api POST /v2/sandboxes "{\"templateID\":\"host\"}")" = 201 &&
    id=$(field "d[\"sandboxID\"]") && test "$id" = "$(sed -n 2p before)" &&
    api DELETE /sandboxes/$id
'

test_expect_success 'a server that dies leaves its warm sandboxes, and the next takes them; a clean stop kills them' '
    wait_for 300 warm_count host 2 && warm_ids host | sort > before &&
    pid=$(cat serve.pid) && kill -9 $pid && wait_for 300 sh -c "! kill -0 $pid" &&
    test "$(warm_ids host | sort)" = "$(cat before)" &&
    start_serve --warm host=2 &&
    test "$(warm_ids host | sort)" = "$(cat before)" &&
    pid=$(cat serve.pid) && kill $pid && { wait $pid; :; } &&
    test "$(e2b sandbox list --json)" = "[]"
'

test_done
