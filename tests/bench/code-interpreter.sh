#!/bin/sh
# bench/code-interpreter.sh - runCode('1+1') of the official SDK through
# `e2b serve` (router, the sandbox's code-interpreter on port 49999, a
# Python kernel), beside the same statement sent by jupyter_client's
# blocking client straight to a local ipykernel, and by `python3 -c` in a
# loop, in the same run; and the idle RSS of the code-interpreter process
# itself (its kernels apart). The sandbox is of the built-in `host`
# template (this machine's python3-ipykernel); no template build.
#
#   N=200 sh tests/bench/code-interpreter.sh      (as root, after make)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${E2B_BUILD_DIR:-$top/build}
E2B=$B/e2b
export E2B_ENVD=$B/envd
N=${N:-200}
PY=/usr/bin/python3
"$PY" -c 'import ipykernel, jupyter_client' || { echo "bench: needs python3-ipykernel and python3-jupyter-client" >&2; exit 1; }
scratch=$(mktemp -d /tmp/e2b-bench-ci.XXXXXX)
export E2B_RUNTIME_DIR=$scratch/run E2B_DATA_DIR=$scratch/data HOME=$scratch
unset E2B_API_URL E2B_API_KEY E2B_SANDBOX_URL E2B_DOMAIN
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || :
    "$E2B" --api-url "" sandbox kill --all -q 2>/dev/null || :
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -d "$top/tests/sdk/node_modules/@e2b/code-interpreter" ] ||
    (cd "$top/tests/sdk" && npm install --no-audit --no-fund >/dev/null)

key=$("$E2B" key create --name bench 2>/dev/null)
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$E2B" serve --listen 127.0.0.1:$port --deny-internet >"$scratch/serve.log" 2>&1 &
pid=$!
i=0
until curl -sf -o /dev/null http://127.0.0.1:$port/health; do
    i=$((i+1)); [ $i -lt 50 ] || { cat "$scratch/serve.log" >&2; exit 1; }; sleep 0.1
done

cat > "$scratch/sdk.mjs" <<'JS'
import { Sandbox } from '@e2b/code-interpreter'
const n = Number(process.env.N)
const sbx = await Sandbox.create('host', { timeoutMs: 600_000 })
try {
  await sbx.commands.run('/run/e2b/envd code-interpreter --no-default-contexts', { background: true })
  for (let i = 0; ; i++) {
    try { if ((await sbx.runCode('1+1')).text === '2') break } catch (e) { if (i > 100) throw e }
    await new Promise((r) => setTimeout(r, 100))
  }
  for (let i = 0; i < 20; i++) await sbx.runCode('1+1') // warm
  const t = []
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint()
    const e = await sbx.runCode('1+1')
    t.push(Number(process.hrtime.bigint() - t0) / 1e6)
    if (e.text !== '2') throw new Error('bad result ' + JSON.stringify(e))
  }
  t.sort((a, b) => a - b)
  const rss = await sbx.commands.run("for p in /proc/[0-9]*; do if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '^/run/e2b/envd code-interpreter'; then grep VmRSS $p/status; fi; done")
  console.log(JSON.stringify({ p50: t[Math.floor(n / 2)], p90: t[Math.floor(n * 0.9)], mean: t.reduce((a, b) => a + b) / n, rss: rss.stdout.trim() }))
} finally { await sbx.kill() }
JS
cp "$scratch/sdk.mjs" "$top/tests/sdk/.bench-ci.mjs"
sdk=$(cd "$top/tests/sdk" && N=$N E2B_API_URL=http://127.0.0.1:$port E2B_SANDBOX_URL=http://127.0.0.1:$port \
    E2B_API_KEY=$key timeout 300 node .bench-ci.mjs; rm -f .bench-ci.mjs)

jc=$(N=$N PYDEVD_DISABLE_FILE_VALIDATION=1 "$PY" - 2>/dev/null <<'PY'
import os, time, statistics
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3")
try:
    for _ in range(20):
        kc.execute_interactive("1+1", output_hook=lambda m: None, timeout=30)
    t = []
    for _ in range(int(os.environ["N"])):
        t0 = time.perf_counter()
        r = kc.execute_interactive("1+1", output_hook=lambda m: None, timeout=30)
        t.append((time.perf_counter() - t0) * 1000)
        assert r["content"]["status"] == "ok"
    t.sort()
    print("%.3f %.3f %.3f" % (t[len(t) // 2], t[int(len(t) * 0.9)], statistics.mean(t)))
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    os._exit(0)
PY
)
start=$(date +%s%N)
k=0
while [ $k -lt 20 ]; do "$PY" -c 'print(1+1)' >/dev/null; k=$((k+1)); done
pyc=$(( ($(date +%s%N) - start) / 20000 ))

"$PY" - "$sdk" "$jc" "$pyc" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); p50, p90, mean = map(float, sys.argv[2].split()); pyc = int(sys.argv[3]) / 1000
print("| measure | e2b | peer |")
print("|---|---|---|")
print("| runCode('1+1') round trip, SDK through e2b serve (p50 / p90 / mean) | %.2f / %.2f / %.2f ms | jupyter_client in-process to a local ipykernel %.2f / %.2f / %.2f ms; `python3 -c` %.1f ms |"
      % (s["p50"], s["p90"], s["mean"], p50, p90, mean, pyc))
print("| ratio to the in-process Jupyter round trip (p50) | %.2fx | goal <= 3x |" % (s["p50"] / p50))
print("| code-interpreter idle RSS (the server alone, kernels apart) | %s | goal <= 4 MiB |" % s["rss"].replace("VmRSS:", "").strip())
PY
