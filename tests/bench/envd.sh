#!/bin/sh
# envd.sh [ENVD] - envd benchmarks, each beside a peer in the same run:
#   idle resident memory (VmRSS after start and after a burst of requests),
#   exec round trip of `true` through the CLI (e2b sandbox exec --envd, unix
#   socket and TCP; BENCH_EXEC_N runs) against fork+exec of `true`,
#   upload and download of a file (default 1 GiB, BENCH_SIZE_MB) with curl
#   against `cp` of the same file on the same disk.
# Prints one line per measure and the ratios. Scratch space: BENCH_DIR or $TMPDIR.
set -u
here=$(cd "$(dirname "$0")" && pwd)
envd=${1:-${E2B_ENVD:-$here/../../build/envd}}
size_mb=${BENCH_SIZE_MB:-1024}
exec_n=${BENCH_EXEC_N:-200}
case $envd in /*) ;; *) envd=$(pwd)/$envd ;; esac
e2b=${E2B_BIN:-$(dirname "$envd")/e2b}
[ -x "$e2b" ] || { echo "envd.sh: no e2b CLI at $e2b (E2B_BIN)" >&2; exit 2; }
[ -x "$envd" ] || { echo "envd.sh: no envd at $envd" >&2; exit 2; }
scratch=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/e2b-bench.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
(cd "$scratch" && exec "$envd" --listen "127.0.0.1:$port" --unix "$scratch/envd.sock") >"$scratch/envd.log" 2>&1 &
pid=$!
i=0
until curl -sf -o /dev/null "$url/health"; do
    i=$((i + 1)); [ $i -gt 50 ] && { echo "envd did not start" >&2; cat "$scratch/envd.log" >&2; exit 1; }
    sleep 0.1
done

rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
now() { date +%s.%N; }
mbps() { awk -v mb="$1" -v t="$2" 'BEGIN { printf "%.0f", mb / t }'; }

sleep 0.5
idle=$(rss)
echo "idle_rss_kib $idle"
for i in $(seq 50); do
    curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"path":"/usr/bin"}' \
        "$url/filesystem.Filesystem/ListDir"
done
echo "burst_rss_kib $(rss)"
sleep 3
after=$(rss)
echo "idle_after_burst_rss_kib $after"
[ "$idle" -lt 2048 ] && echo "idle_rss_under_2mib yes" || echo "idle_rss_under_2mib NO"

# Exec round trip: the whole CLI (start, Connect stream, start/end events,
# exit status) for `true`, beside what the same shell pays to fork+exec it.
ms_per() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.2f", t * 1000 / n }'; }
truebin=/bin/true
t0=$(now); i=0; while [ $i -lt "$exec_n" ]; do "$truebin"; i=$((i + 1)); done; t1=$(now)
fork_ms=$(ms_per "$(echo "$t1 - $t0" | bc)" "$exec_n")
for ep in "unix:$scratch/envd.sock" "$url"; do
    "$e2b" sandbox exec --envd "$ep" - "$truebin" || { echo "exec through $ep failed" >&2; exit 1; }
done
t0=$(now); i=0
while [ $i -lt "$exec_n" ]; do "$e2b" sandbox exec --envd "unix:$scratch/envd.sock" - "$truebin"; i=$((i + 1)); done
t1=$(now)
exec_unix_ms=$(ms_per "$(echo "$t1 - $t0" | bc)" "$exec_n")
t0=$(now); i=0
while [ $i -lt "$exec_n" ]; do "$e2b" sandbox exec --envd "$url" - "$truebin"; i=$((i + 1)); done
t1=$(now)
exec_tcp_ms=$(ms_per "$(echo "$t1 - $t0" | bc)" "$exec_n")
# What of that is the CLI starting at all (dynamic linking, library setup)?
t0=$(now); i=0; while [ $i -lt "$exec_n" ]; do "$e2b" --version >/dev/null; i=$((i + 1)); done; t1=$(now)
cli_ms=$(ms_per "$(echo "$t1 - $t0" | bc)" "$exec_n")
echo "fork_exec_true_ms $fork_ms"
echo "cli_version_ms $cli_ms"
echo "exec_true_unix_ms $exec_unix_ms"
echo "exec_true_tcp_ms $exec_tcp_ms"
echo "exec_unix_vs_fork $(awk -v a="$exec_unix_ms" -v b="$fork_ms" 'BEGIN { printf "%.1f", a / b }')"
echo "rss_after_exec_kib $(rss)"

echo "# creating a ${size_mb} MiB file in $scratch"
head -c $((size_mb * 1024 * 1024)) /dev/urandom >"$scratch/src"
sync

t0=$(now); cp "$scratch/src" "$scratch/cp-copy"; sync; t1=$(now)
cp_t=$(echo "$t1 - $t0" | bc)
rm -f "$scratch/cp-copy"; sync

t0=$(now)
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
    -T "$scratch/src" "$url/files?path=$scratch/up")
sync; t1=$(now)
up_t=$(echo "$t1 - $t0" | bc)
[ "$st" = 200 ] || echo "upload failed: $st" >&2
cmp -s "$scratch/src" "$scratch/up" || echo "upload corrupted" >&2
echo "upload_rss_peak_kib $(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")"

t0=$(now)
curl -s -o "$scratch/down" "$url/files?path=$scratch/up"
sync; t1=$(now)
down_t=$(echo "$t1 - $t0" | bc)
cmp -s "$scratch/src" "$scratch/down" || echo "download corrupted" >&2

echo "cp_mib_s $(mbps "$size_mb" "$cp_t")"
echo "upload_mib_s $(mbps "$size_mb" "$up_t")"
echo "download_mib_s $(mbps "$size_mb" "$down_t")"
echo "upload_vs_cp $(awk -v a="$cp_t" -v b="$up_t" 'BEGIN { printf "%.2f", a / b }')"
echo "download_vs_cp $(awk -v a="$cp_t" -v b="$down_t" 'BEGIN { printf "%.2f", a / b }')"
