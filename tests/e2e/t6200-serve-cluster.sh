#!/bin/sh
# e2b serve --cluster: Redis and three nodes, each in a network namespace of
# its own (veth pairs on a bridge in the catalog's namespace; addresses only
# inside them), each with its own state and template store, as separate
# machines would have. The official SDK drives them through node 1
# (tests/sdk/cluster.test.mjs): creates spread over the nodes, a template
# fetched from the node that built it, traffic and calls through a node
# that does not run the sandbox. Then a node dies (kill -9): its sandboxes
# are reported lost once its lease runs out, creates go on elsewhere, and
# its restart leaves nothing of them. And what must not get in: a node with
# another secret, calls signed with it, forged sandbox IDs.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"
. "$TEST_DIR/lib-image.sh"

command -v redis-server >/dev/null || { echo "1..0 # SKIP no redis-server (tools/deps.sh installs it)"; exit 0; }
SDK=$SRC_DIR/tests/sdk
if [ ! -d "$SDK/node_modules/e2b" ]; then
    (cd "$SDK" && npm ci --no-audit --no-fund >/dev/null 2>&1) || { echo "1..0 # SKIP the SDK's packages cannot be installed"; exit 0; }
fi

NET=10.207.73
LEASE=3
SECRET=$TRASH/secret
printf 'cluster-secret-of-t6200-%s\n' "$$" > "$SECRET"
printf 'another-secret-entirely-0123456789\n' > "$TRASH/wrong-secret"

# the catalog's namespace: a bridge, Redis, and the SDK as the client
netns_new hub && netns_exec hub ip link set lo up && netns_exec hub ip link add br0 type bridge &&
    netns_exec hub ip addr add $NET.1/24 dev br0 && netns_exec hub ip link set br0 up ||
    { echo "Bail out! cannot make the catalog's namespace"; exit 1; }
for i in 1 2 3 4; do
    netns_new n$i && netns_exec n$i ip link set lo up &&
        netns_exec hub ip link add v$i type veth peer name eth0 netns "$(netns_pid n$i)" &&
        netns_exec hub ip link set v$i master br0 up &&
        netns_exec n$i ip addr add $NET.1$i/24 dev eth0 && netns_exec n$i ip link set eth0 up ||
        { echo "Bail out! cannot make node $i's namespace"; exit 1; }
done
nsenter -t "$(netns_pid hub)" -n -- redis-server --bind $NET.1 --port 6379 --save "" --appendonly no \
    --protected-mode no > "$TRASH/redis.log" 2>&1 &
echo $! > "$TRASH/redis.pid"
test_atexit "kill \$(cat $TRASH/redis.pid)"
rcli() { netns_exec hub redis-cli -h $NET.1 "$@"; }
wait_for 100 sh -c "nsenter -t $(netns_pid hub) -n -- redis-cli -h $NET.1 ping | grep -q PONG" ||
    { echo "Bail out! redis did not start"; cat "$TRASH/redis.log"; exit 1; }

# each node: its own state and store, as on a machine of its own
node_env() { echo "E2B_RUNTIME_DIR=$TRASH/n$1/run E2B_DATA_DIR=$TRASH/n$1/data"; }
start_node() { # N [secret file]
    mkdir -p "$TRASH/n$1" &&
    { env $(node_env $1) nsenter -t "$(netns_pid n$1)" -n -- "$E2B" serve --listen $NET.1$1:3000 --deny-internet \
        --cluster redis://$NET.1:6379 --node-address $NET.1$1:3000 --node-id node$1 --lease $LEASE \
        --cluster-secret-file "${2:-$SECRET}" >> "$TRASH/n$1/serve.log" 2>&1 &
      echo $! > "$TRASH/n$1/pid"; } &&
    test_atexit "kill $! 2>/dev/null; env $(node_env $1) e2b sandbox kill --all -q"
}
up() { netns_exec hub curl -sf -o /dev/null http://$NET.1$1:3000/health; }
api() { # node method path [body] -> status; body in $TRASH/out
    netns_exec hub curl -s -o "$TRASH/out" -w '%{http_code}' -X "$2" -H "X-API-Key: $KEY" \
        -H 'Content-Type: application/json' ${4:+--data-binary "$4"} "http://$NET.1$1:3000$3"
}
field() { python3 -c "import json,sys; print(json.load(open('$TRASH/out'))$1)"; }
# what node N's /nodes says: "node1:ready node2:ready ..."
nodes_of() {
    netns_exec hub curl -s -H "X-API-Key: $KEY" http://$NET.1$1:3000/nodes |
        python3 -c "import json,sys; print(' '.join(sorted(n['nodeID'] + ':' + n['status'] for n in json.load(sys.stdin))))"
}
three_ready() { test "$(nodes_of $1)" = "node1:ready node2:ready node3:ready"; }
is_lost() { netns_exec hub curl -s -H "X-API-Key: $KEY" http://$NET.11:3000/sandboxes/$1 | grep -q "was lost"; }

KEY=$(env $(node_env 1) e2b key create -q --name cluster) || { echo "Bail out! cannot create a key"; exit 1; }
for i in 2 3 4; do mkdir -p "$TRASH/n$i/data/serve" && cp "$TRASH/n1/data/serve/keys.json" "$TRASH/n$i/data/serve/"; done
# the template: busybox (and a bash that is its sh, for the SDK's commands), on node 1 only
img_busybox unused 1 ctx/root >/dev/null 2>&1 && printf '#!/bin/sh\nexec /bin/sh "$@"\n' > ctx/root/bin/bash &&
    chmod 755 ctx/root/bin/bash && printf 'FROM scratch\nCOPY root/ /\n' > ctx/e2b.Dockerfile &&
    env $(node_env 1) e2b template build -q -n clusterbox -p ctx > tpl.out 2> tpl.err ||
    { echo "Bail out! cannot build the template"; cat tpl.err; exit 1; }

test_expect_success 'three nodes join: each lists the three, ready' '
    start_node 1 && start_node 2 && start_node 3 &&
    wait_for 100 up 1 && wait_for 100 up 2 && wait_for 100 up 3 &&
    wait_for 50 three_ready 1 && wait_for 50 three_ready 2 && wait_for 50 three_ready 3 &&
    test "$(rcli smembers e2b:nodes | sort | tr "\n" " ")" = "node1 node2 node3 " &&
    grep -q "joined the cluster at $NET.1:6379 as node .node2." "$TRASH/n2/serve.log"
'

test_expect_success 'the official SDK through node 1: 30 creates over 3 nodes, traffic and calls through other nodes' '
    { netns_exec hub env -C "$SDK" E2B_API_URL=http://$NET.11:3000 E2B_SANDBOX_URL=http://$NET.11:3000 \
        E2B_API_KEY=$KEY CLUSTER_TEMPLATE=clusterbox CLUSTER_OUT=$TRASH/left.json \
        CLUSTER_NODES=http://$NET.11:3000=node1,http://$NET.12:3000=node2,http://$NET.13:3000=node3 \
        timeout 300 node --test --test-concurrency=1 --test-reporter=tap cluster.test.mjs > sdk.tap 2>&1 ||
        { tail -n 80 sdk.tap; false; }; } &&
    grep -E "^# placed|^# (pass|fail)" sdk.tap
'

test_expect_success 'the template came from node 1 to the others, the same build' '
    b1=$(env $(node_env 1) e2b template list --json | python3 -c "import json,sys; print([t[\"buildID\"] for t in json.load(sys.stdin) if \"clusterbox\" in t.get(\"aliases\",[])][0])") &&
    for i in 2 3; do
        test "$(env $(node_env $i) e2b template list --json | python3 -c "import json,sys; print([t[\"buildID\"] for t in json.load(sys.stdin) if \"clusterbox\" in t.get(\"aliases\",[])][0])")" = "$b1" || return 1
    done
'

test_expect_success 'the catalog records each sandbox with the node that runs it' '
    python3 -c "import json; d=json.load(open(\"$TRASH/left.json\")); [print(n, i) for n, ids in d.items() for i in ids]" > left &&
    test "$(wc -l < left)" = 29 &&
    while read -r n id; do
        test "$(rcli hget e2b:sbx:$id node)" = "$n" && test -d "$TRASH/n${n#node}/run/sandboxes/$id" || return 1
    done < left
'

test_expect_success 'forged sandbox IDs route nowhere else: a token is checked by the node that runs the sandbox' '
    a=$(awk "\$1==\"node2\" {print \$2; exit}" left) && b=$(awk "\$1==\"node3\" {print \$2; exit}" left) &&
    test "$(api 1 GET /sandboxes/$b)" = 200 && tok_b=$(field "[\"envdAccessToken\"]") &&
    netns_exec hub curl -s -o out -w "%{http_code}" -H "E2b-Sandbox-Id: $a" -H "X-Access-Token: $tok_b" \
        http://$NET.11:3000/envs > code && test "$(cat code)" = 401 &&
    netns_exec hub curl -s -o out -w "%{http_code}" -H "E2b-Sandbox-Id: $b" -H "X-Access-Token: $tok_b" \
        http://$NET.11:3000/envs > code && test "$(cat code)" = 200 && test_grep "$b" out &&
    for forged in aaaaaaaaaaaaaaaaaaaa "../../$b" "$b/../x" "${b}x" "node3" "e2b:sbx:$b"; do
        netns_exec hub curl -s -o out -w "%{http_code}" -H "E2b-Sandbox-Id: $forged" -H "X-Access-Token: $tok_b" \
            http://$NET.11:3000/envs > code && test "$(cat code)" = 502 && test_grep "not found" out || return 1
    done &&
    netns_exec hub curl -s -o out -w "%{http_code}" -H "Host: 49983-$a.cluster.test" -H "X-Access-Token: $tok_b" \
        http://$NET.11:3000/envs > code && test "$(cat code)" = 401 &&
    netns_exec hub curl -s -o out -w "%{http_code}" -H "E2b-Sandbox-Id: $b" -H "E2b-Cluster-Hop: node9" \
        -H "X-Access-Token: $tok_b" http://$NET.11:3000/envs > code && test "$(cat code)" = 502
'

sign() { # secret method target [ms] -> the two headers, signed as node9
    python3 - "$@" <<-\EOF
	import hashlib, hmac, sys, time
	secret = open(sys.argv[1], "rb").read().rstrip(b"\r\n")
	ms = sys.argv[4] if len(sys.argv) > 4 else str(int(time.time() * 1000))
	msg = "e2b-cluster-v1\nnode9\n%s\n%s\n%s\n%s" % (ms, sys.argv[2], sys.argv[3], hashlib.sha256(b"").hexdigest())
	print("E2b-Cluster-Node: node9")
	print("E2b-Cluster-Auth: %s.%s" % (ms, hmac.new(secret, msg.encode(), hashlib.sha256).hexdigest()))
	EOF
}
signed() { # secret path [ms] -> status of GET path on node 2, signed
    sign "$1" GET "$2" ${3:-} > hdr && netns_exec hub curl -s -o "$TRASH/out" -w "%{http_code}" \
        -H "$(sed -n 1p hdr)" -H "$(sed -n 2p hdr)" "http://$NET.12:3000$2"
}

test_expect_success 'a node with another secret cannot join; calls signed with it, stale or unsigned get 401' '
    test_expect_code 1 env $(node_env 4) nsenter -t "$(netns_pid n4)" -n -- timeout 20 "$E2B" serve \
        --listen $NET.14:3000 --cluster redis://$NET.1:6379 --node-address $NET.14:3000 --node-id node4 \
        --cluster-secret-file "$TRASH/wrong-secret" 2> n4.err &&
    test_grep "secret differs" n4.err &&
    test "$(rcli exists e2b:node:node4)" = 0 && test "$(rcli exists e2b:lease:node4)" = 0 &&
    ! rcli smembers e2b:nodes | grep -q node4 &&
    test "$(signed "$SECRET" /v2/sandboxes)" = 200 &&
    test "$(signed "$TRASH/wrong-secret" /v2/sandboxes)" = 401 && test_grep "does not match" "$TRASH/out" &&
    test "$(signed "$SECRET" /v2/sandboxes 1000)" = 401 && test_grep "off this node" "$TRASH/out" &&
    tid=$(rcli hkeys e2b:node:node1:tpl | head -n 1) && test -n "$tid" &&
    b1=$(rcli hget e2b:node:node1:tpl "$tid" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"b\"])") &&
    test "$(signed "$TRASH/wrong-secret" /_cluster/templates/$tid/$b1)" = 401 &&
    test "$(netns_exec hub curl -s -o /dev/null -w "%{http_code}" http://$NET.12:3000/_cluster/templates/$tid/$b1)" = 401 &&
    test "$(netns_exec hub curl -s -o /dev/null -w "%{http_code}" -H "E2b-Cluster-Node: node1" \
        http://$NET.12:3000/v2/sandboxes)" = 401
'

test_expect_success 'kill -9 of node 3: its sandboxes are reported lost, creates go on on the other two' '
    n3=$(awk "\$1==\"node3\"" left | wc -l) && test "$n3" -gt 0 &&
    lost=$(awk "\$1==\"node3\" {print \$2; exit}" left) &&
    kill -9 "$(cat "$TRASH/n3/pid")" && t0=$(date +%s%N) &&
    wait_for 200 is_lost "$lost" &&
    echo "# reported lost after $(( ($(date +%s%N) - t0) / 1000000 )) ms (lease ${LEASE}000 ms)" &&
    test "$(api 2 GET /sandboxes/$lost)" = 404 && test_grep "node .node3. stopped renewing its lease" "$TRASH/out" &&
    test "$(api 1 GET "/v2/sandboxes?limit=100")" = 200 &&
    python3 -c "import json; d=json.load(open(\"$TRASH/out\")); assert len(d) == 29 - $n3 and all(s[\"clientID\"] != \"node3\" for s in d), len(d)" &&
    test "$(api 1 GET /nodes)" = 200 && python3 -c "import json; d={n[\"nodeID\"]: n[\"status\"] for n in json.load(open(\"$TRASH/out\"))}; assert d[\"node3\"] == \"dead\", d" &&
    test "$(rcli hget e2b:node:node3 state)" = dead &&
    for i in 1 2 3 4 5 6; do
        test "$(api 1 POST /v2/sandboxes "{\"templateID\":\"clusterbox\",\"timeout\":120}")" = 201 &&
        test "$(field "[\"clientID\"]")" != node3 || return 1
    done &&
    netns_exec hub curl -s -o out -w "%{http_code}" -H "E2b-Sandbox-Id: $lost" http://$NET.11:3000/envs > code &&
    test "$(cat code)" = 502 && test_grep "was lost" out
'

test_expect_success 'node 3 restarts: nothing of its lost sandboxes is left, in the catalog or on its machine' '
    awk "\$1==\"node3\" {print \$2}" left > lost3 &&
    start_node 3 && wait_for 100 up 3 &&
    grep -q "were reported lost" "$TRASH/n3/serve.log" &&
    test -z "$(rcli smembers e2b:node:node3:sbx)" &&
    while read -r id; do
        test "$(rcli exists e2b:sbx:$id)" = 0 && (export $(node_env 3) && sbx_wait_gone "$id") || return 1
    done < lost3 &&
    test "$(rcli hget e2b:node:node3 state)" = ready &&
    test "$(api 3 GET "/v2/sandboxes?limit=100")" = 200 &&
    python3 -c "import json; d=json.load(open(\"$TRASH/out\")); assert len(d) == 29 - $(wc -l < lost3) + 6, len(d)"
'

test_done
