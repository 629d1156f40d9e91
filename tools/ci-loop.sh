#!/bin/sh
# ci-loop.sh - run CI (.ci/run) N times in a row, each time on a fresh clone
# of this repository's HEAD, as a CI machine would; stop at the first failure.
#
#   tools/ci-loop.sh [-n N] [-j JOBS] [--load] [--keep]
#
#   -n N      runs (default 5)
#   -j JOBS   MAKEFLAGS=-jJOBS for the run's make (default: none)
#   --load    a CPU-bound load (one busy process) runs beside every run
#   --keep    keep the clones and logs (default: only a failed run's)
#
# Prints one line per run (number, seconds, result) and a summary; a failed
# run's log tail is printed and its clone is kept for a look. Exit 0 only
# when every run passed. Nothing is retried.
set -u
runs=5 jobs="" load=0 keep=0
while [ $# -gt 0 ]; do
    case $1 in
    -n) runs=$2; shift ;;
    -j) jobs=$2; shift ;;
    --load) load=1 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ci-loop.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
case $runs in ''|*[!0-9]*) echo "ci-loop.sh: -n wants a number" >&2; exit 2 ;; esac

top=$(cd "$(dirname "$0")/.." && pwd)
head=$(git -C "$top" rev-parse HEAD) || exit 1
work=$(mktemp -d "${TMPDIR:-/tmp}/e2b-ci-loop.XXXXXX")
loadpid=""
stop_load() { [ -n "$loadpid" ] && kill "$loadpid" 2>/dev/null; loadpid=""; }
trap 'stop_load' EXIT
trap 'stop_load; exit 130' INT TERM

echo "# ci-loop: $runs fresh-clone runs of .ci/run at $(git -C "$top" log -1 --format='%h %s' | cut -c1-70)"
echo "# make flags: ${jobs:+-j$jobs}${jobs:-none}; load beside: $([ $load = 1 ] && echo 'one busy process' || echo none); $(nproc) cores"
passed=0 total=0
i=1
while [ "$i" -le "$runs" ]; do
    dir=$work/run-$i
    git clone -q --no-local "$top" "$dir" && git -C "$dir" checkout -q "$head" || exit 1
    if [ $load = 1 ]; then
        sh -c 'while :; do :; done' &
        loadpid=$!
    fi
    start=$(date +%s)
    if [ -n "$jobs" ]; then
        (cd "$dir" && MAKEFLAGS=-j$jobs .ci/run) > "$work/run-$i.log" 2>&1
    else
        (cd "$dir" && .ci/run) > "$work/run-$i.log" 2>&1
    fi
    rc=$?
    secs=$(( $(date +%s) - start ))
    stop_load
    total=$((total + secs))
    if [ $rc = 0 ]; then
        passed=$((passed + 1))
        echo "run $i: pass in ${secs}s"
        [ $keep = 1 ] || rm -rf "$dir" "$work/run-$i.log"
    else
        echo "run $i: FAIL (exit $rc) after ${secs}s; clone $dir, log $work/run-$i.log"
        grep -E "^not ok|^# .* failed|Failed|FAIL" "$work/run-$i.log" | head -40
        echo "--- last lines of the log ---"
        tail -n 30 "$work/run-$i.log"
        break
    fi
    i=$((i + 1))
done
echo "# ci-loop: $passed of $runs passed, ${total}s in all"
[ $passed = "$runs" ] && { [ $keep = 1 ] || rmdir "$work" 2>/dev/null; exit 0; }
exit 1
