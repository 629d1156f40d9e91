#!/bin/sh
# `e2b sandbox run-code`: the CLI against a sandbox's code interpreter,
# locally (a connection to port 49999 inside the sandbox) and remotely
# through `e2b serve`'s router as the SDK goes. The sandbox is of the
# built-in `host` template (this machine's /usr: Debian's python3-ipykernel),
# its code-interpreter started with `sandbox exec -b`, so no template build
# is needed here (tests/sdk/run-code-interpreter.sh builds the real one).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

if ! /usr/bin/python3 -c 'import ipykernel, matplotlib' 2>/dev/null; then
    echo "1..0 # SKIP no python3-ipykernel or python3-matplotlib (tools/deps.sh test installs them)"
    exit 0
fi
e2b() { timeout 120 "$E2B" "$@"; }

sbx_create host
e2b sandbox exec -b "$SBX" -- /run/e2b/envd code-interpreter --no-default-contexts >/dev/null
wait_for 300 sh -c "$E2B sandbox exec $SBX -- curl -sf http://127.0.0.1:49999/health"

test_expect_success 'run-code: state across runs, stdout, the main result' '
    e2b sandbox run-code "$SBX" "x = 20" > out && test ! -s out &&
    e2b sandbox run-code "$SBX" "print(\"hi\"); x + 22" > out &&
    printf "hi\n42\n" > want && test_cmp want out
'

test_expect_success 'run-code: the code from standard input, and with -' '
    printf "for i in range(2):\n    print(i)\n" | e2b sandbox run-code "$SBX" > out &&
    printf "0\n1\n" > want && test_cmp want out &&
    echo "x" | e2b sandbox run-code "$SBX" - > out && test "$(cat out)" = 20
'

test_expect_success 'run-code: an error is the traceback on stderr and exit 1' '
    test_expect_code 1 e2b sandbox run-code "$SBX" "1/0" > out 2> err &&
    test_grep ZeroDivisionError err && test ! -s out
'

test_expect_success 'run-code --json: the execution as the SDK gives it' '
    e2b --json sandbox run-code "$SBX" "print(1); {\"a\": [1, 2]}" > out.json &&
    /usr/bin/python3 -c "
import json; d = json.load(open(\"out.json\"))
assert d[\"logs\"] == {\"stdout\": [\"1\\n\"], \"stderr\": []}, d
r = d[\"results\"][0]; assert r[\"isMainResult\"] and r[\"text\"] == \"{\x27a\x27: [1, 2]}\", r
assert d[\"error\"] is None and d[\"executionCount\"] >= 1, d" &&
    test_expect_code 1 e2b --json sandbox run-code "$SBX" "raise ValueError(\"v\")" > err.json &&
    /usr/bin/python3 -c "
import json; e = json.load(open(\"err.json\"))[\"error\"]
assert e[\"name\"] == \"ValueError\" and e[\"value\"] == \"v\" and \"raise\" in e[\"traceback\"], e"
'

test_expect_success 'run-code --save-results: a matplotlib figure as a PNG file' '
    e2b sandbox run-code --save-results plots "$SBX" \
        "import matplotlib.pyplot as plt; plt.plot([1, 3, 2]); plt.show()" > out 2> err &&
    test_grep "saved plots/result-1.png" err &&
    test "$(head -c 8 plots/result-1.png | od -An -c | tr -d " ")" = "211PNG\r\n032\n" &&
    test_grep "<result: png" out
'

test_expect_success 'run-code --context new/list/ID, --env, --language' '
    e2b sandbox run-code --context new "$SBX" "y = 1" 2> err &&
    ctx=$(sed -n "s/^context //p" err) && test -n "$ctx" &&
    e2b sandbox run-code --context list "$SBX" > list && test_grep "^$ctx  python" list &&
    test "$(e2b sandbox run-code --context "$ctx" "$SBX" "y")" = 1 &&
    test "$(e2b sandbox run-code -e K=v "$SBX" "import os; os.environ[\"K\"]")" = v &&
    test_expect_code 125 e2b sandbox run-code --language cobol "$SBX" "1" 2> err &&
    test_grep "cobol" err &&
    test_expect_code 125 e2b sandbox run-code --context nope "$SBX" "1" 2> err &&
    test_grep "Context nope not found" err &&
    test_expect_code 2 e2b sandbox run-code --context "$ctx" --language python "$SBX" "1"
'

test_expect_success 'run-code --timeout: 124, the code is interrupted, the context goes on' '
    test_expect_code 124 e2b sandbox run-code --timeout 2 "$SBX" "while True: pass" &&
    test "$(e2b sandbox run-code --timeout 30 "$SBX" "x")" = 20
'

test_expect_success 'run-code on a sandbox without a code interpreter: a clear error' '
    sbx_create host && other=$SBX &&
    test_expect_code 125 e2b sandbox run-code "$other" "1" 2> err && test_grep "49999\|code interpreter\|refused" err &&
    e2b sandbox kill "$other"
'

PORT=$(free_port)
KEY=$(e2b key create --name t7010 2>/dev/null)
"$E2B" serve --listen 127.0.0.1:$PORT > serve.log 2>&1 &
test_atexit "kill $!"
wait_for 50 curl -sf -o /dev/null http://127.0.0.1:$PORT/health

test_expect_success 'remote mode: run-code through serve'"'"'s router (E2b-Sandbox-Port 49999)' '
    sbx2=$(E2B_API_URL=http://127.0.0.1:$PORT E2B_API_KEY=$KEY e2b sandbox create -d host) &&
    test_atexit "$E2B sandbox kill $sbx2" &&
    E2B_API_URL=http://127.0.0.1:$PORT E2B_API_KEY=$KEY \
        e2b sandbox exec -b "$sbx2" -- /run/e2b/envd code-interpreter --no-default-contexts >/dev/null &&
    wait_for 300 sh -c "E2B_API_URL=http://127.0.0.1:$PORT E2B_API_KEY=$KEY $E2B sandbox run-code $sbx2 1" &&
    E2B_API_URL=http://127.0.0.1:$PORT E2B_API_KEY=$KEY e2b sandbox run-code "$sbx2" "v = 6" &&
    test "$(E2B_API_URL=http://127.0.0.1:$PORT E2B_API_KEY=$KEY e2b sandbox run-code "$sbx2" "print(v * 7)")" = 42
'

test_done
