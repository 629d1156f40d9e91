#!/bin/sh
# bench/template-api: in one run, the same template built
#  (a) through E2B's template API: the official SDK's Template builder
#      (tests/sdk's pinned `e2b`) against `e2b serve` (hashes, tar.gz of the
#      COPY files, uploads, the build in the server's worker, log polling);
#  (b) with `e2b template build` on this machine, from a Dockerfile with the
#      same steps;
#  (c) with `e2b template build` in remote mode against a server;
# each from cold caches (a store of its own), same base image (busybox, an
# oci: layout), same limits (2 CPUs, 1 GiB, the SDK's), for two templates:
# one whose step works for a while, one whose context is most of it; the
# median of ROUNDS (3) rounds. Goal: (a) no more than 1.2 times (b). Exits 1
# when a build fails.
set -u
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${E2B_BUILD_DIR:-$SRC_DIR/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$SRC_DIR/$BUILD_DIR ;; esac
E2B=$BUILD_DIR/e2b
SDK=$SRC_DIR/tests/sdk
T=$(mktemp -d "${TMPDIR:-/tmp}/e2b-bench-tplapi.XXXXXX")
PIDS=
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ "$(id -u)" = 0 ] || { echo "bench/template-api: builds need root"; exit 1; }
for tool in node bc busybox; do
    command -v $tool > /dev/null || { echo "bench/template-api: no $tool"; exit 1; }
done
[ -d "$SDK/node_modules/e2b" ] || (cd "$SDK" && npm install --no-audit --no-fund > /dev/null) || exit 1
. "$SRC_DIR/tests/e2e/lib-image.sh"
now() { date +%s.%N; }
secs() { printf '%.3f' "$(echo "$2 - $1" | bc)"; }
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }

img_busybox "$T/busybox" 1 > /dev/null || exit 1
IMG=oci:$T/busybox:1
# two templates: "app", a small context and a step that works for a while
# (what installs and builds are); "files", a context of 2000 small files and
# 8 MB, whose steps are quick (the transfer is most of it)
mkdir -p "$T/app/ctx/app" "$T/files/ctx/files"
i=0; while [ $i -lt 50 ]; do echo "module $i" > "$T/app/ctx/app/m$i.txt"; i=$((i + 1)); done
i=0; while [ $i -lt 2000 ]; do echo "file $i" > "$T/files/ctx/files/f$i"; i=$((i + 1)); done
head -c 8000000 /dev/urandom > "$T/files/ctx/big.bin"
APP_RUN='dd if=/dev/zero bs=1M count=1500 2>/dev/null | md5sum > /srv/app.sum'
FILES_RUN='i=0; while [ $i -lt 200 ]; do echo $i > /srv/app/files/run$i; i=$((i + 1)); done'
# the same steps both ways: the SDK's, and a Dockerfile with E2B's semantics
# spelled out (USER root for the steps, USER user at the end)
cat > "$T/app/ctx/e2b.Dockerfile" <<DF
FROM $IMG
USER root
COPY app /srv/app
RUN $APP_RUN
ENV APP=/srv/app
WORKDIR /srv/app
USER user
DF
cat > "$T/files/ctx/e2b.Dockerfile" <<DF
FROM $IMG
USER root
COPY files /srv/app/files
COPY big.bin /srv/big.bin
RUN $FILES_RUN
ENV APP=/srv/app
WORKDIR /srv/app
USER user
DF
cat > "$T/bench.mjs" <<'JS'
import { Template } from 'e2b'
let t = Template({ fileContextPath: process.env.CTX }).fromImage(process.env.IMG).setUser('root')
if (process.env.KIND === 'app') t = t.copy('app', '/srv/app').runCmd(process.env.APP_RUN)
else t = t.copy('files', '/srv/app/files').copy('big.bin', '/srv/big.bin').runCmd(process.env.FILES_RUN)
t = t.setEnvs({ APP: '/srv/app' }).setWorkdir('/srv/app').setUser('user')
const t0 = process.hrtime.bigint()
await Template.build(t, process.env.NAME)
console.log((Number(process.hrtime.bigint() - t0) / 1e9).toFixed(3))
JS
cp "$T/bench.mjs" "$SDK/.bench-template-api.mjs" || exit 1
trap 'rm -f "$SDK/.bench-template-api.mjs"; cleanup' EXIT

serve() { # dir port: a server with a store of its own
    mkdir -p "$1/home"
    E2B_DATA_DIR=$1/data E2B_RUNTIME_DIR=$1/run HOME=$1/home "$E2B" serve --listen 127.0.0.1:$2 > "$1/serve.log" 2>&1 &
    PIDS="$PIDS $!"
    n=100
    until curl -sf -o /dev/null http://127.0.0.1:$2/health; do
        n=$((n - 1)); [ $n -gt 0 ] || { echo "e2b serve did not start"; cat "$1/serve.log"; exit 1; }
        sleep 0.1
    done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ROUNDS=${ROUNDS:-3}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
one() { # kind: the three builds of one template, ROUNDS times, each with a store of its own
    local kind=$1 r d pa pc key keyc t0 t1 as= bs= cs= a b c
    for r in $(seq "$ROUNDS"); do
        d=$T/$kind/$r
        pa=$(free_port)
        serve "$d/a" "$pa"
        key=$(E2B_DATA_DIR=$d/a/data HOME=$d/a/home "$E2B" key create -q)
        a=$(cd "$SDK" && KIND=$kind CTX=$T/$kind/ctx IMG=$IMG NAME=bench-sdk APP_RUN=$APP_RUN FILES_RUN=$FILES_RUN \
            E2B_API_URL=http://127.0.0.1:$pa E2B_API_KEY=$key node .bench-template-api.mjs 2> "$d/a.err") ||
            { echo "SDK build failed:"; tail -5 "$d/a.err"; exit 1; }
        mkdir -p "$d/b/home"
        t0=$(now)
        E2B_DATA_DIR=$d/b/data E2B_RUNTIME_DIR=$d/b/run HOME=$d/b/home E2B_API_URL= \
            "$E2B" template build -q -n bench-local --cpu-count 2 --memory-mb 1024 "$T/$kind/ctx" > /dev/null 2> "$d/b.err" ||
            { echo "local build failed:"; tail -5 "$d/b.err"; exit 1; }
        t1=$(now)
        b=$(secs "$t0" "$t1")
        pc=$(free_port)
        serve "$d/c" "$pc"
        keyc=$(E2B_DATA_DIR=$d/c/data HOME=$d/c/home "$E2B" key create -q)
        t0=$(now)
        E2B_API_URL=http://127.0.0.1:$pc E2B_API_KEY=$keyc HOME=$d/c/home \
            "$E2B" template build -q -n bench-remote "$T/$kind/ctx" > /dev/null 2> "$d/c.err" ||
            { echo "remote build failed:"; tail -5 "$d/c.err"; exit 1; }
        t1=$(now)
        c=$(secs "$t0" "$t1")
        as="$as $a" bs="$bs $b" cs="$cs $c"
    done
    a=$(echo "$as" | median) b=$(echo "$bs" | median) c=$(echo "$cs" | median)
    printf '  %-52s %8ss  (%s)\n' "(a) official SDK Template.build -> e2b serve" "$a" "${as# }"
    printf '  %-52s %8ss  (%s)\n' "(b) e2b template build (this machine)" "$b" "${bs# }"
    printf '  %-52s %8ss  (%s)\n' "(c) e2b template build --api-url (-> e2b serve)" "$c" "${cs# }"
    printf '  medians of %s rounds: (a)/(b) = %s (goal <= 1.20), (c)/(b) = %s\n' "$ROUNDS" "$(ratio "$a" "$b")" \
        "$(ratio "$c" "$b")"
}
echo "app: busybox, COPY 50 files, RUN (1.5 GB through md5sum), ENV/WORKDIR/USER; cold caches"
one app
echo "files: busybox, COPY 2000 files, COPY 8 MB, RUN (200 files), ENV/WORKDIR/USER; cold caches"
one files
