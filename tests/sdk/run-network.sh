#!/bin/sh
# run-network.sh BUILD_DIR - outbound network rules through the official SDK
# against `e2b serve` (network.test.mjs). Needs root: the test's own network
# namespace holds the far side, a veth pair away (two addresses, as E2B's
# egress sees hosts: HTTP on 80 and 8080, HTTPS on 443 with a certificate
# for good.test the egress filter trusts, a DNS server whose names the
# tests choose); nothing leaves the machine. Exit status: the tests'.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-$top/build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
e2b=$build/e2b
[ -x "$e2b" ] || { echo "run-network.sh: no e2b binary in $build" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then
    echo "run-network.sh: skipped (needs root for the test's network namespace)"
    exit 0
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/e2b-sdk-network.XXXXXX")
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data HOME=$scratch
export E2B_ENVD=${E2B_ENVD:-$build/envd}
# a subnet of this run's own, and interfaces named after it
n=$(( $$ % 250 ))
net=10.253.$n
veth=e2bsn$$
pid= holder= far=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    E2B_API_URL= "$e2b" sandbox kill --all -q 2>/dev/null
    for p in $far; do kill "$p" 2>/dev/null; done
    ip link del "${veth}a" 2>/dev/null
    [ -n "$holder" ] && kill "$holder" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -d "$here/node_modules/e2b" ]; then
    (cd "$here" && npm install --no-audit --no-fund >/dev/null) || { echo "run-network.sh: npm install failed" >&2; exit 2; }
fi
unshare -n sleep 86400 </dev/null >/dev/null 2>&1 &
holder=$!
i=0
until [ "$(readlink /proc/$holder/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do
    i=$((i+1)); [ $i -gt 100 ] && { echo "run-network.sh: no network namespace" >&2; exit 1; }; sleep 0.05
done
in_far() { nsenter -t "$holder" -n -- "$@"; }
ip link add "${veth}a" type veth peer name "${veth}b" && ip link set "${veth}b" netns "$holder" &&
    ip addr add "$net.1/24" dev "${veth}a" && ip link set "${veth}a" up &&
    in_far ip addr add "$net.2/24" dev "${veth}b" && in_far ip addr add "$net.3/24" dev "${veth}b" &&
    in_far ip link set "${veth}b" up && in_far ip link set lo up ||
    { echo "run-network.sh: cannot set up the test network" >&2; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=good.test -addext subjectAltName=DNS:good.test \
    -keyout "$scratch/key.pem" -out "$scratch/cert.pem" -days 1 >/dev/null 2>&1 || { echo "run-network.sh: no certificate (openssl)" >&2; exit 1; }
in_far python3 "$here/egress-host.py" "$scratch/cert.pem" "$scratch/key.pem" >"$scratch/host.log" 2>&1 &
far="$far $!"
# good.test, bad.test and mismatch.test: the same host; rebind.test: the host, then the other address
in_far python3 "$top/tests/e2e/dns-server.py" "$net.2" 53 good.test=$net.2 bad.test=$net.2 \
    rebind.test=$net.2,$net.3 mismatch.test=$net.2 >"$scratch/dns.log" 2>&1 &
far="$far $!"
i=0
until grep -q ready "$scratch/host.log" 2>/dev/null && grep -q ready "$scratch/dns.log" 2>/dev/null &&
    curl -sf -o /dev/null "http://$net.2:8080/"; do
    i=$((i+1)); [ $i -gt 100 ] && { echo "run-network.sh: the far side did not come up" >&2; cat "$scratch"/*.log >&2; exit 1; }
    sleep 0.1
done
key=$("$e2b" key create --name sdk-network) || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# the test host's certificate: trusted upstream by the egress filter (as a public one would be)
E2B_EGRESS_DNS=$net.2:53 E2B_EGRESS_CA_FILE=$scratch/cert.pem "$e2b" serve --listen 127.0.0.1:$port \
    >"$scratch/serve.log" 2>&1 &
pid=$!
i=0
until curl -sf -o /dev/null http://127.0.0.1:$port/health; do
    i=$((i+1))
    if [ $i -gt 50 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "run-network.sh: e2b serve did not come up" >&2; cat "$scratch/serve.log" >&2; exit 1
    fi
    sleep 0.1
done
cd "$here" && E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port E2B_API_KEY=$key \
    SDK_NET_HOST=$net.2 SDK_NET_OTHER=$net.3 \
    timeout 300 node --test --test-concurrency=1 --test-reporter=tap network.test.mjs
rc=$?
[ $rc = 0 ] || { echo "# serve log:"; sed 's/^/#   /' "$scratch/serve.log" | tail -n 20;
    for f in "$scratch"/run/sandboxes/*/egress.log; do [ -f "$f" ] && sed 's/^/#   /' "$f" | tail -n 20; done; }
exit $rc
