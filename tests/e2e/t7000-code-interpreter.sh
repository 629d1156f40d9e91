#!/bin/sh
# The code-interpreter applet of the guest binary (`envd code-interpreter`)
# on this machine, against real Jupyter kernels: Debian's python3-ipykernel
# and templates/code-interpreter's bash and JavaScript kernels (their specs
# rewritten to the source tree); E2B's protocol on the wire (curl), bad
# input, interrupts, a killed kernel, and tokens and environment from a
# real envd.
. "$(dirname "$0")/test-lib.sh"

PY=/usr/bin/python3
if ! "$PY" -c 'import ipykernel' 2>/dev/null; then
    echo "1..0 # SKIP no python3-ipykernel (tools/deps.sh test installs it)"
    exit 0
fi
TPL=$SRC_DIR/templates/code-interpreter
mkdir -p jupyter/kernels ipython/profile_default home/user
for k in bash javascript; do
    mkdir -p jupyter/kernels/$k &&
    sed "s|/usr/local/lib/e2b-kernels|$TPL/lib|" "$TPL/kernels/$k/kernel.json" > jupyter/kernels/$k/kernel.json
done
cp "$TPL/ipython/ipython_kernel_config.py" ipython/profile_default/
export JUPYTER_PATH=$TRASH/jupyter IPYTHONDIR=$TRASH/ipython E2B_KERNELS_LIB=$TPL/lib
command -v node >/dev/null && test_set_prereq NODE

# ci_start [options]: the server on a free port ($CI), its log in ci.log
ci_start() {
    CI_PORT=$(free_port)
    CI=http://127.0.0.1:$CI_PORT
    "$ENVD_BIN" code-interpreter --listen 127.0.0.1:$CI_PORT --cwd "$TRASH/home/user" -v "$@" > ci.log 2>&1 &
    CI_PID=$!
    test_atexit "kill $CI_PID"
    wait_for 300 sh -c "curl -sf $CI/health | grep -q OK"
}
# ex JSON [curl args]: POST /execute; the lines in out, the status printed
ex() {
    local body=$1
    shift
    curl -s -o out -w '%{http_code}' -XPOST "$CI/execute" -H 'Content-Type: application/json' -d "$body" "$@"
}
# field TYPE KEY: KEY of the first line of TYPE in out
field() {
    "$PY" -c 'import json, sys
for l in open("out"):
    d = json.loads(l)
    if d["type"] == sys.argv[1]:
        v = d.get(sys.argv[2]); print(v if isinstance(v, str) else json.dumps(v)); break' "$1" "$2"
}

ci_start --envd "unix:$TRASH/no-envd.sock"

test_expect_success 'health once the default python and javascript contexts run' '
    test "$(curl -s $CI/health)" = "\"OK\"" &&
    curl -s $CI/contexts > ctx.json &&
    "$PY" -c "import json; l = json.load(open(\"ctx.json\")); assert sorted(c[\"language\"] for c in l) == [\"javascript\", \"python\"], l"
'

test_expect_success 'execute: state kept, stdout, the main result, the stream shape, end_of_execution last' '
    test "$(ex "{\"code\": \"x = 41\"}")" = 200 &&
    test "$(ex "{\"code\": \"print(\\\"hi\\\")\\nx + 1\"}")" = 200 &&
    test "$(field stdout text)" = hi &&
    test "$(field result text)" = 42 &&
    test "$(field result is_main_result)" = true &&
    test "$(field number_of_executions execution_count)" = 2 &&
    test "$(tail -n 1 out)" = "{\"type\":\"end_of_execution\"}"
'

test_expect_success 'an error: name, value, traceback without colour codes' '
    ex "{\"code\": \"1/0\"}" >/dev/null &&
    test "$(field error name)" = ZeroDivisionError &&
    test "$(field error value)" = "division by zero" &&
    field error traceback > tb && test_grep "1/0" tb && ! grep -q "$(printf "\033")" tb
'

test_expect_success 'env_vars for one execution, then gone' '
    ex "{\"code\": \"import os; os.environ[\\\"A\\\"]\", \"env_vars\": {\"A\": \"it'"'"'s\"}}" >/dev/null &&
    test "$(field result text)" = "it'"'"'s" &&
    ex "{\"code\": \"import os; os.environ.get(\\\"A\\\", \\\"unset\\\")\"}" >/dev/null &&
    test "$(field result text)" = unset
'

test_expect_success NODE 'languages: js and bash keep state; bash status as the error value' '
    ex "{\"code\": \"let n = 2; console.log(\\\"node\\\"); n * 21\", \"language\": \"js\"}" >/dev/null &&
    test "$(field stdout text)" = node && test "$(field result text)" = 42 &&
    ex "{\"code\": \"n + 1\", \"language\": \"javascript\"}" >/dev/null && test "$(field result text)" = 3 &&
    ex "{\"code\": \"V=5; cd /tmp\", \"language\": \"bash\"}" >/dev/null &&
    ex "{\"code\": \"echo \$V \$(pwd); false\", \"language\": \"bash\"}" >/dev/null &&
    test "$(field stdout text)" = "5 /tmp" && test "$(field error value)" = 1
'

test_expect_success 'contexts: create with cwd, list, restart (state gone), delete' '
    curl -s -XPOST $CI/contexts -d "{\"cwd\": \"/tmp\"}" > c.json &&
    id=$("$PY" -c "import json; print(json.load(open(\"c.json\"))[\"id\"])") &&
    ex "{\"code\": \"import os; y = 1; os.getcwd()\", \"context_id\": \"$id\"}" >/dev/null &&
    test "$(field result text)" = /tmp &&
    curl -s $CI/contexts | grep -q "$id" &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -XPOST $CI/contexts/$id/restart)" = 200 &&
    ex "{\"code\": \"y\", \"context_id\": \"$id\"}" >/dev/null && test "$(field error name)" = NameError &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -XDELETE $CI/contexts/$id)" = 200 &&
    ! curl -s $CI/contexts | grep -q "$id" &&
    test "$(ex "{\"code\": \"1\", \"context_id\": \"$id\"}")" = 404
'

test_expect_success 'bad input: malformed JSON, wrong types, both context and language, unknowns' '
    test "$(ex "{\"code\": ")" = 422 && test_grep json_invalid out &&
    test "$(ex "{\"code\": 1}")" = 422 && test_grep "\"code\"" out &&
    test "$(ex "{}")" = 422 && test_grep missing out &&
    test "$(ex "[1]")" = 422 &&
    test "$(ex "{\"code\": \"1\", \"env_vars\": {\"A\": 1}}")" = 422 &&
    test "$(ex "{\"code\": \"1\", \"context_id\": \"x\", \"language\": \"python\"}")" = 400 &&
    test_grep "Only one of context_id or language" out &&
    test "$(ex "{\"code\": \"1\", \"context_id\": \"nope\"}")" = 404 && test_grep "Context nope not found" out &&
    test "$(ex "{\"code\": \"1\", \"language\": \"cobol\"}")" = 404 && test_grep "cobol" out &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -XPOST $CI/contexts -d "{\"cwd\": \"/nonexistent\"}")" = 400 &&
    test "$(curl -s -o /dev/null -w "%{http_code}" $CI/execute)" = 405 &&
    test "$(curl -s -o /dev/null -w "%{http_code}" $CI/nope)" = 404 &&
    ex "{\"code\": \"x\"}" >/dev/null && test "$(field result text)" = 41
'

test_expect_success 'a client that goes away interrupts its execution; the context goes on' '
    ex "{\"code\": \"z = 3\"}" >/dev/null &&
    start=$(date +%s) &&
    test_expect_code 28 curl -s -m 2 -XPOST $CI/execute -d "{\"code\": \"while True: pass\"}" >/dev/null &&
    ex "{\"code\": \"z\"}" -m 20 >/dev/null && test "$(field result text)" = 3 &&
    test $(($(date +%s) - start)) -lt 15 &&
    test_grep "client gone, interrupting" ci.log
'

# in_background FILE JSON: an execution in the background, its lines in FILE
in_background() {
    curl -s -XPOST "$CI/execute" -d "$2" > "$1" &
    BG=$!
}
# kill_later SECONDS PID
kill_later() {
    { sleep "$1"; kill -9 "$2"; } &
}

test_expect_success 'executions in one context wait their turn; keepalive lines while they run' '
    in_background s1 "{\"code\": \"import time; time.sleep(6); 1\"}" &&
    sleep 0.5 && ex "{\"code\": \"2\"}" >/dev/null && wait $BG && test_grep "\"text\":\"1\"" s1 &&
    test "$(field result text)" = 2 &&
    curl -s -XPOST $CI/execute -d "{\"code\": \"import time; time.sleep(5.5)\"}" > ka &&
    test_grep "\"keepalive\"" ka
'

test_expect_success 'a kernel killed mid-run: an error line, a new kernel, the others unharmed' '
    curl -s -XPOST $CI/contexts -d "{}" > c.json &&
    id=$("$PY" -c "import json; print(json.load(open(\"c.json\"))[\"id\"])") &&
    ex "{\"code\": \"import os; os.getpid()\", \"context_id\": \"$id\"}" >/dev/null &&
    pid=$(field result text) &&
    kill_later 1 $pid &&
    ex "{\"code\": \"import time; time.sleep(20)\", \"context_id\": \"$id\"}" -m 15 >/dev/null &&
    test "$(field error name)" = ContextRestarting &&
    field error value > v && test_grep "killed by signal 9" v &&
    ex "{\"code\": \"x\"}" >/dev/null && test "$(field result text)" = 41 &&
    ex "{\"code\": \"1 + 1\", \"context_id\": \"$id\"}" -m 20 >/dev/null && test "$(field result text)" = 2
'

test_expect_success 'the server is small: RSS of the process itself' '
    rss=$(awk "/^VmRSS/ {print \$2}" /proc/$CI_PID/status) &&
    echo "# code-interpreter RSS: $rss kB" &&
    test "$rss" -lt 8192
'

# with an envd: the token is the one envd wants, the environment envd's
ENVD_PORT=$(free_port)
"$ENVD_BIN" --listen 127.0.0.1:$ENVD_PORT --access-token sekrit > envd.log 2>&1 &
test_atexit "kill $!"
wait_for 50 curl -sf -o /dev/null http://127.0.0.1:$ENVD_PORT/health
kill $CI_PID
ci_start --envd http://127.0.0.1:$ENVD_PORT --no-default-contexts

test_expect_success 'X-Access-Token: checked by envd for /execute, and for the others when sent' '
    curl -s -XPOST -H "X-Access-Token: sekrit" http://127.0.0.1:$ENVD_PORT/init \
        -d "{\"envVars\": {\"FROM_ENVD\": \"yes\"}}" &&
    test "$(ex "{\"code\": \"1\"}")" = 401 &&
    test "$(ex "{\"code\": \"1\"}" -H "X-Access-Token: wrong")" = 401 &&
    test "$(ex "{\"code\": \"import os; os.environ[\\\"FROM_ENVD\\\"]\"}" -H "X-Access-Token: sekrit")" = 200 &&
    test "$(field result text)" = yes &&
    test "$(curl -s -o /dev/null -w "%{http_code}" -H "X-Access-Token: wrong" -XPOST $CI/contexts -d "{}")" = 401 &&
    test "$(curl -s -o /dev/null -w "%{http_code}" $CI/contexts)" = 200
'

test_done
