#!/bin/sh
# bench/volume.sh - volume file throughput beside cp on the same disk, in one run:
#   1. write: a BENCH_MB MiB file into a volume with `e2b volume cp` (the
#      volume's own ext4 on a loop device, written to a temporary file,
#      fsync'd and renamed into place) and through e2b serve's content API
#      (HTTP PUT, streamed), beside `cp` to a directory of the same disk
#      followed by `sync` of the file;
#   2. read: the file back with `e2b volume cp ... -`, through the API
#      (HTTP GET), beside `cat` of cp's copy (all from the page cache, each
#      into a pipe read by cat).
# Needs root (volumes are loop-mounted ext4). The scratch directory (and so
# the volume images) is under BENCH_DIR (default /var/tmp: a disk, not tmpfs).
set -eu
B=${E2B_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
E2B=$B/e2b
MB=${BENCH_MB:-256}
N=${BENCH_N:-3}
scratch=$(mktemp -d "${BENCH_DIR:-/var/tmp}/e2b-bench-vol.XXXXXX")
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data HOME=$scratch
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || :
    "$E2B" --api-url "" volume rm -q bench 2>/dev/null || :
    rm -rf "$scratch"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "bench/volume.sh: needs root (loop devices)"; exit 0; }

us() { echo $(($(date +%s%N) / 1000)); }
rate() { echo "scale=1; $MB * 1000000 / $1" | bc; } # elapsed us -> MiB/s
best=0
timeit() { # command...: the fastest of N runs, in us
    best=0
    for i in $(seq "$N"); do
        t0=$(us); "$@"; t1=$(us)
        d=$((t1 - t0))
        if [ "$best" = 0 ] || [ "$d" -lt "$best" ]; then best=$d; fi
    done
    echo "$best"
}

head -c $((MB << 20)) /dev/urandom > "$scratch/src"
mkdir -p "$scratch/plain"
"$E2B" --api-url "" volume create --size $((MB * 5)) bench > /dev/null
key=$("$E2B" key create -q --name bench)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$E2B" serve --listen 127.0.0.1:$port > "$scratch/serve.log" 2>&1 &
pid=$!
i=0; until curl -sf -o /dev/null "http://127.0.0.1:$port/health"; do [ $((i += 1)) -lt 300 ] || { cat "$scratch/serve.log"; exit 1; }; sleep 0.1; done
vol=$(curl -sf -H "X-API-Key: $key" "http://127.0.0.1:$port/volumes/bench")
id=$(echo "$vol" | python3 -c 'import json,sys; print(json.load(sys.stdin)["volumeID"])')
tok=$(echo "$vol" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
api=http://127.0.0.1:$port/volumecontent/$id/file?path=/api.bin

echo "volume throughput beside cp, $MB MiB, best of $N ($(nproc) CPUs, $(df -T "$scratch" | awk 'NR==2 {print $2}') under $scratch)"
cp_write() { cp "$scratch/src" "$scratch/plain/dst" && sync "$scratch/plain/dst"; }
vol_write() { "$E2B" --api-url "" volume cp "$scratch/src" bench:/cli.bin; }
api_write() { curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $tok" --data-binary @"$scratch/src" "$api"; }
t=$(timeit cp_write); cp_w=$(rate "$t")
t=$(timeit vol_write); vol_w=$(rate "$t")
t=$(timeit api_write); api_w=$(rate "$t")
printf "write: cp + sync %8s MiB/s   e2b volume cp %8s MiB/s   content API PUT %8s MiB/s\n" "$cp_w" "$vol_w" "$api_w"
# each into the same pipe (what reads it copies every byte: /dev/null
# itself would let a sendfile skip them)
cp_read() { cat "$scratch/plain/dst" | cat > /dev/null; }
vol_read() { "$E2B" --api-url "" volume cp bench:/cli.bin - | cat > /dev/null; }
api_read() { curl -sf -H "Authorization: Bearer $tok" "$api" | cat > /dev/null; }
t=$(timeit cp_read); cp_r=$(rate "$t")
t=$(timeit vol_read); vol_r=$(rate "$t")
t=$(timeit api_read); api_r=$(rate "$t")
printf "read:  cat | cat  %8s MiB/s   e2b volume cp %8s MiB/s   content API GET %8s MiB/s\n" "$cp_r" "$vol_r" "$api_r"
cmp "$scratch/src" "$scratch/data/volumes/$id/fs/cli.bin"
echo "write, e2b volume cp / cp: $(echo "scale=2; $vol_w / $cp_w" | bc)x   read: $(echo "scale=2; $vol_r / $cp_r" | bc)x"
