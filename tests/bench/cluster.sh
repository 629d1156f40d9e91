#!/bin/sh
# bench/cluster.sh - e2b serve --cluster on this machine: Redis and up to
# three nodes, each in a network namespace of its own (veth pairs on a
# bridge; addresses only inside them), the official SDK as the client.
#
#  1. creates/s and p50/p99 create latency (serve-load.mjs: CLIENTS loops of
#     create, one command, kill) through node 1 of a cluster of 1, 2 and 3
#     nodes, beside the same load on a plain `e2b serve` (no catalog) in
#     the same run. All nodes share this machine's CPUs, so more nodes bring
#     no more capacity: the figures are the catalog's and the routing's cost.
#  2. the forwarded path beside the direct one: a sandbox on node 2 reached
#     through node 1 (relayed) and through node 2 itself, in turns:
#     envd requests (GET /envs), SDK commands (commands.run) and API calls
#     (GET /sandboxes/<id>); p50 and p99 of each, and forwarded/direct.
#
#   CLIENTS=10 SECONDS_RUN=10 ROUNDS=500 sh tests/bench/cluster.sh   (as root, after make)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${E2B_BUILD_DIR:-$top/build}
E2B=$B/e2b
export E2B_ENVD=$B/envd
CLIENTS=${CLIENTS:-10}
SECONDS_RUN=${SECONDS_RUN:-10}
ROUNDS=${ROUNDS:-500}
NET=10.207.74
scratch=$(mktemp -d /tmp/e2b-bench-cluster.XXXXXX)
unset E2B_API_URL E2B_API_KEY E2B_SANDBOX_URL E2B_DOMAIN
holders=
servers=
cleanup() {
    for p in $servers; do kill "$p" 2>/dev/null || :; done
    for p in $servers; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
    for i in 1 2 3; do
        E2B_RUNTIME_DIR=$scratch/n$i/run "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :
    done
    for p in $holders; do kill "$p" 2>/dev/null || :; done
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ "$(id -u)" = 0 ] || { echo "bench/cluster.sh: needs root (namespaces, sandboxes)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "bench/cluster.sh: no redis-server (tools/deps.sh)" >&2; exit 2; }
[ -d "$top/tests/sdk/node_modules/e2b" ] || (cd "$top/tests/sdk" && npm ci --no-audit --no-fund >/dev/null)

ns() { # NAME: a network namespace held by a sleeping process
    local t=0
    unshare -n sleep 86400 </dev/null >/dev/null 2>&1 &
    holders="$holders $!"
    echo $! > "$scratch/ns-$1"
    while [ "$(readlink /proc/$!/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do
        t=$((t + 1)); [ $t -lt 100 ] || { echo "bench: no namespace" >&2; exit 1; }; sleep 0.02
    done
}
in_ns() { local name=$1; shift; nsenter -t "$(cat "$scratch/ns-$name")" -n -- "$@"; }
ns hub
in_ns hub ip link set lo up && in_ns hub ip link add br0 type bridge &&
    in_ns hub ip addr add $NET.1/24 dev br0 && in_ns hub ip link set br0 up
for i in 1 2 3; do
    ns n$i
    in_ns n$i ip link set lo up
    in_ns hub ip link add v$i type veth peer name eth0 netns "$(cat "$scratch/ns-n$i")"
    in_ns hub ip link set v$i master br0 up
    in_ns n$i ip addr add $NET.1$i/24 dev eth0 && in_ns n$i ip link set eth0 up
done
nsenter -t "$(cat "$scratch/ns-hub")" -n -- redis-server --bind $NET.1 --port 6379 --save "" --appendonly no --protected-mode no \
    > "$scratch/redis.log" 2>&1 &
servers="$servers $!"
i=0
until in_ns hub redis-cli -h $NET.1 ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "bench: redis did not start" >&2; exit 1; }; sleep 0.05
done
printf 'bench-cluster-secret-%s\n' $$ > "$scratch/secret"
mkdir -p "$scratch/keys"
key=$(E2B_DATA_DIR=$scratch/keys "$E2B" key create -q --name bench)

start() { # N [cluster]: e2b serve in namespace nN
    local n t=0
    mkdir -p "$scratch/n$1"
    set -- "$1" ${2:+--cluster redis://$NET.1:6379 --node-address $NET.1$1:3000 --node-id node$1 \
        --cluster-secret-file $scratch/secret --lease 5}
    n=$1; shift
    # nsenter itself, not a function in a subshell: $! is then e2b serve
    E2B_RUNTIME_DIR=$scratch/n$n/run E2B_DATA_DIR=$scratch/n$n/data \
        nsenter -t "$(cat "$scratch/ns-n$n")" -n -- "$E2B" serve -q \
        --listen $NET.1$n:3000 --deny-internet --keys "$scratch/keys/serve/keys.json" "$@" \
        >> "$scratch/n$n/serve.log" 2>&1 &
    servers="$servers $!"
    echo $! > "$scratch/n$n/pid"
    until in_ns hub curl -sf -o /dev/null http://$NET.1$n:3000/health; do
        t=$((t + 1)); [ $t -lt 100 ] || { echo "bench: node $n did not start" >&2; cat "$scratch/n$n/serve.log" >&2; exit 1; }
        sleep 0.05
    done
}
stop_all() {
    local i p
    for i in 1 2 3; do
        [ -f "$scratch/n$i/pid" ] || continue
        p=$(cat "$scratch/n$i/pid"); kill "$p" 2>/dev/null || :
        while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
        rm -f "$scratch/n$i/pid"
        E2B_RUNTIME_DIR=$scratch/n$i/run "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :
    done
    in_ns hub redis-cli -h $NET.1 flushall > /dev/null
}
seen() { # N: node 1 lists N nodes, ready (a node's view is read every third of the lease)
    local t=0
    until [ "$(in_ns hub curl -s -H "X-API-Key: $key" http://$NET.11:3000/nodes | grep -o '"ready"' | wc -l)" = "$1" ]; do
        t=$((t + 1)); [ $t -lt 200 ] || { echo "bench: node 1 does not see $1 nodes:" >&2; in_ns hub curl -s -H "X-API-Key: $key" http://$NET.11:3000/nodes >&2; exit 1; }; sleep 0.05
    done
}
load() { # label: serve-load through node 1
    in_ns hub env -C "$top/tests/sdk" E2B_API_URL=http://$NET.11:3000 E2B_SANDBOX_URL=http://$NET.11:3000 \
        E2B_API_KEY=$key CLIENTS=$CLIENTS SECONDS_RUN=$SECONDS_RUN \
        timeout 300 node "$top/tests/bench/serve-load.mjs" > "$scratch/load.json"
    python3 - "$1" "$scratch/load.json" "$scratch/base" <<'EOF'
import json, os, sys
d = json.load(open(sys.argv[2]))
base = json.load(open(sys.argv[3])) if os.path.exists(sys.argv[3]) else None
rel = " (%.2fx the plain server's creates/s, p99 %.2fx)" % (d["createsPerSec"] / base["createsPerSec"],
      float(d["p99ms"]) / float(base["p99ms"])) if base else ""
print("%-22s %6.1f creates/s  p50 %7s ms  p99 %7s ms  errors %d%s" % (sys.argv[1], d["createsPerSec"], d["p50ms"],
      d["p99ms"], d["errors"], rel))
if d["errors"]:
    print("  first errors: %s" % d["firstErrors"])
if not base:
    json.dump(d, open(sys.argv[3], "w"))
EOF
}

echo "# $CLIENTS SDK clients, ${SECONDS_RUN}s each, through node 1 ($(nproc) CPUs shared by all nodes)"
start 1
load "plain e2b serve"
stop_all
for n in 1 2 3; do
    for i in $(seq 1 $n); do start $i cluster; done
    seen $n
    load "cluster of $n node(s)"
    stop_all
done

# the forwarded path: a sandbox on node 2, through node 1 and through node 2
start 1 cluster; start 2 cluster
seen 2
id=; tok=
for try in $(seq 1 10); do
    in_ns hub curl -s -o "$scratch/c.json" -H "X-API-Key: $key" -H 'Content-Type: application/json' \
        -d '{"templateID":"host","timeout":600}' http://$NET.11:3000/v2/sandboxes
    if [ "$(python3 -c "import json; print(json.load(open('$scratch/c.json'))['clientID'])")" = node2 ]; then
        id=$(python3 -c "import json; print(json.load(open('$scratch/c.json'))['sandboxID'])")
        tok=$(python3 -c "import json; print(json.load(open('$scratch/c.json'))['envdAccessToken'])")
        break
    fi
done
[ -n "$id" ] || { echo "bench: no sandbox landed on node 2" >&2; exit 1; }
in_ns hub env -C "$top/tests/sdk" ID=$id TOKEN=$tok KEY=$key ROUNDS=$ROUNDS VIA=http://$NET.11:3000 \
    DIRECT=http://$NET.12:3000 node --input-type=module -e '
import http from "node:http"
import { Sandbox } from "e2b"
const { ID, TOKEN, KEY, VIA, DIRECT } = process.env
const rounds = Number(process.env.ROUNDS)
const get = (base, path, headers) => new Promise((resolve, reject) => {
  const u = new URL(base)
  http.get({ host: u.hostname, port: u.port, path, headers, agent: false }, (res) => {
    res.resume(); res.on("end", () => res.statusCode === 200 ? resolve() : reject(new Error(`${path}: ${res.statusCode}`)))
  }).on("error", reject)
})
const sbx = { via: await Sandbox.connect(ID, { apiUrl: VIA, sandboxUrl: VIA, apiKey: KEY }),
              direct: await Sandbox.connect(ID, { apiUrl: DIRECT, sandboxUrl: DIRECT, apiKey: KEY }) }
const kinds = {
  "envd GET /envs": (w) => get(w === "via" ? VIA : DIRECT, "/envs", { "E2b-Sandbox-Id": ID, "X-Access-Token": TOKEN }),
  "SDK commands.run": async (w) => { const r = await sbx[w].commands.run("true"); if (r.exitCode) throw new Error("exit") },
  "API GET /sandboxes/id": (w) => get(w === "via" ? VIA : DIRECT, `/sandboxes/${ID}`, { "X-API-Key": KEY }),
}
const pct = (a, p) => a[Math.min(a.length - 1, Math.floor(p / 100 * a.length))]
for (const [name, f] of Object.entries(kinds)) {
  const t = { via: [], direct: [] }
  for (let i = 0; i < 20; i++) { await f("via"); await f("direct") } // warm up
  for (let i = 0; i < rounds; i++) for (const w of i % 2 ? ["via", "direct"] : ["direct", "via"]) {
    const t0 = performance.now(); await f(w); t[w].push(performance.now() - t0)
  }
  for (const w of ["via", "direct"]) t[w].sort((a, b) => a - b)
  const [v50, d50, v99, d99] = [pct(t.via, 50), pct(t.direct, 50), pct(t.via, 99), pct(t.direct, 99)]
  console.log(`${name.padEnd(22)} forwarded p50 ${v50.toFixed(2)} ms p99 ${v99.toFixed(2)} ms | direct p50 ${d50.toFixed(2)} ms p99 ${d99.toFixed(2)} ms | forwarded/direct p50 ${(v50 / d50).toFixed(2)}x`)
}
'
