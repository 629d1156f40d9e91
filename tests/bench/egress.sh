#!/bin/sh
# bench/egress.sh - what outbound rules cost a connection, in one run: the
# time of BENCH_CONNECTS connections from inside a sandbox to a host in a
# network namespace of the benchmark's own, a veth pair away (each: connect,
# an HTTP request head, the first byte of the answer, close),
#   1. with no rules (--internet),
#   2. with 100 address rules loaded (50 allowOut, 50 denyOut CIDRs, none of
#      them the host: every packet goes through the sets), goal <= 1.1x,
#   3. with the host allowed by name (every connection to port 80 through
#      the egress helper's Host check), for comparison.
# The path out is the ns runtime's own: the sandbox's namespace, its
# nftables table, slirp4netns (user-mode TCP) and the host's routing. The
# three sandboxes run side by side, their runs interleaved, BENCH_ROUNDS (9)
# rounds of BENCH_CONNECTS (500), each figure the median (and the best
# round, which a busy machine disturbs least; BENCH_VERBOSE=1 prints every
# round). Needs root.
set -eu
B=${E2B_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
E2B=$B/e2b
export E2B_ENVD=$B/envd
CONNECTS=${BENCH_CONNECTS:-500}
scratch=$(mktemp -d /tmp/e2b-bench-egress.XXXXXX)
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data HOME=$scratch
[ "$(id -u)" = 0 ] || { echo "bench/egress.sh: needs root"; exit 0; }
net=10.251.$(( $$ % 250 ))
veth=e2bbe$$
holder= far=
cleanup() {
    "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :
    for p in $far $holder; do kill "$p" 2>/dev/null || :; done
    ip link del "${veth}a" 2>/dev/null || :
    rm -rf "$scratch"
}
trap cleanup EXIT
unshare -n sleep 86400 </dev/null >/dev/null 2>&1 &
holder=$!
i=0; until [ "$(readlink /proc/$holder/ns/net)" != "$(readlink /proc/self/ns/net)" ] || [ $((i += 1)) -gt 100 ]; do sleep 0.05; done
in_far() { nsenter -t "$holder" -n -- "$@"; }
ip link add "${veth}a" type veth peer name "${veth}b"
ip link set "${veth}b" netns "$holder"
ip addr add "$net.1/24" dev "${veth}a" && ip link set "${veth}a" up
in_far ip addr add "$net.2/24" dev "${veth}b" && in_far ip link set "${veth}b" up && in_far ip link set lo up
# started as simple commands, so $! is the server itself (nsenter -n execs it)
nsenter -t "$holder" -n -- python3 -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 80)); s.listen(1024)
while True:
    c, _ = s.accept(); c.recv(4096); c.sendall(b"HTTP/1.0 204 No Content\r\n\r\n"); c.recv(1); c.close()' &
far=$!
nsenter -t "$holder" -n -- python3 "$(dirname "$0")/../e2e/dns-server.py" "$net.2" 53 far.test=$net.2 > /dev/null 2>&1 &
far="$far $!"
until curl -s -o /dev/null "http://$net.2:80/" 2>/dev/null || [ $? = 52 ] || [ $? = 56 ]; do sleep 0.1; done
export E2B_EGRESS_DNS=$net.2:53

rules=""
for i in $(seq 0 49); do rules="$rules --allow-out 172.$((16 + i / 16)).$((i % 16 * 16)).0/20 --deny-out 100.$((64 + i)).0.0/16"; done
# per run: n connections from the sandbox's python, each a request head
# sent and the answer's first byte awaited, closed by the sandbox first (so
# TIME_WAIT stays on this side, not on the host's ports the far side would
# see again), timed there; the name resolved once before, so DNS is not in it
LOOP="python3 -c \"import socket,time,sys
h, n = sys.argv[1], int(sys.argv[2])
ip = socket.gethostbyname(h)
req = b'GET / HTTP/1.0\\r\\nHost: ' + h.encode() + b'\\r\\n\\r\\n'
t = time.perf_counter()
for i in range(n):
    c = socket.create_connection((ip, 80), timeout=5); c.sendall(req); c.recv(1); c.close()
print(round((time.perf_counter() - t) / n * 1e6, 1))\""
ROUNDS=${BENCH_ROUNDS:-9}
# the three sandboxes side by side, their runs interleaved round by round,
# in turns (so a change of load hits them alike); each figure the median of ROUNDS
a=$("$E2B" sandbox create -d host --timeout 600 --internet)
b=$("$E2B" sandbox create -d host --timeout 600 $rules)
c=$("$E2B" sandbox create -d host --timeout 600 --deny-out ALL_TRAFFIC --allow-out far.test)
run() { "$E2B" sandbox exec "$1" "$LOOP $2 $3"; }
for s in "$a $net.2" "$b $net.2" "$c far.test"; do run $s 200 > /dev/null; done # warm
: > "$scratch/a"; : > "$scratch/b"; : > "$scratch/c"
for r in $(seq "$ROUNDS"); do # every other round the other way round
    order="a b c"; [ $((r % 2)) = 0 ] && order="c b a"
    for x in $order; do
        case $x in
        a) run "$a" "$net.2" "$CONNECTS" >> "$scratch/a" ;;
        b) run "$b" "$net.2" "$CONNECTS" >> "$scratch/b" ;;
        c) run "$c" far.test "$CONNECTS" >> "$scratch/c" ;;
        esac
    done
done
show() { tr "\n" " " < "$1"; echo; }
median() { sort -n "$1" | sed -n "$(((ROUNDS + 1) / 2))p"; }
best() { sort -n "$1" | head -1; }
r() { echo "scale=2; $1 / $2" | bc; }
none=$(median "$scratch/a") hundred=$(median "$scratch/b") named=$(median "$scratch/c")
[ -n "${BENCH_VERBOSE:-}" ] && { show "$scratch/a"; show "$scratch/b"; show "$scratch/c"; }
n0=$(best "$scratch/a") h0=$(best "$scratch/b") m0=$(best "$scratch/c")
echo "connect + request head + answer + close, from a sandbox to a host a veth away, $CONNECTS per run, $ROUNDS rounds: median (best) ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
echo "no rules:                        $none us ($n0)"
echo "100 address rules:               $hundred us ($h0)  $(r "$hundred" "$none")x ($(r "$h0" "$n0")x), goal <= 1.1x"
echo "allowed by name (Host checked):  $named us ($m0)  $(r "$named" "$none")x ($(r "$m0" "$n0")x)"
