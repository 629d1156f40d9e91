#!/bin/sh
# Our CLI in remote mode against e2b serve, set up only by `auth login`
# (no E2B_* variables): every sandbox verb and template list|delete goes
# through the REST API, and envd traffic (exec, files, process, pty) through
# the server's router at the API URL, as sandboxes there have no domain.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

# A store template first, while commands still use this machine.
sbx_tiny_template tiny ctx "echo from-store > ctx/root/etc/marker" > tid ||
    { echo "Bail out! cannot build a template"; cat ctx.build.err; exit 1; }
TID=$(tail -n 1 tid)
sbx_tiny_template doomed ctx2 > /dev/null || { echo "Bail out! cannot build a template"; exit 1; }

KEY=$(e2b key create -q --name tests) || { echo "Bail out! cannot create a key"; exit 1; }
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
e2b serve --listen 127.0.0.1:$PORT --deny-internet > "$TRASH/serve.log" 2>&1 &
echo $! > "$TRASH/serve.pid"
test_atexit "kill \$(cat $TRASH/serve.pid)"
test_atexit "e2b --api-url '' sandbox kill --all"
wait_for 50 curl -sf -o /dev/null "$URL/health" || { echo "Bail out! serve did not start"; exit 1; }
e2b auth login --api-key "$KEY" --api-url "$URL" 2>/dev/null || { echo "Bail out! cannot log in"; exit 1; }
env | grep -q "^E2B_\(API\|SANDBOX\|DOMAIN\)" && { echo "Bail out! E2B variables are set"; exit 1; }

test_expect_success 'logged in: remote backend, envd traffic to the API URL' '
    e2b auth info --json > info && test_grep "\"backend\": \"remote\"" info &&
    test_grep "per sandbox" info
'

test_expect_success 'create, list (with filters), info' '
    id=$(e2b sandbox create -d host --timeout 600 -e FROM=remote -m t=cli) && echo "$id" > id &&
    e2b sandbox list > list && test_grep "$id" list &&
    e2b sandbox list -m t=cli --json > list.json && test_grep "$id" list.json &&
    e2b sandbox list -m t=other --json > none.json && test_grep -v "$id" none.json &&
    e2b sandbox info "$id" --json > i.json && test_grep "\"state\": \"running\"" i.json &&
    test_grep "\"domain\": null" i.json
'

test_expect_success 'exec: output, exit status, stdin, env' '
    id=$(cat id) &&
    test "$(e2b sandbox exec "$id" "echo \$FROM")" = remote &&
    test "$(echo piped | e2b sandbox exec "$id" cat)" = piped &&
    test_expect_code 3 e2b sandbox exec "$id" "exit 3"
'

test_expect_success 'files: write, cat, ls, stat, mkdir, mv, rm, upload, download' '
    id=$(cat id) &&
    echo hello > h && e2b sandbox files write "$id" /tmp/r/h.txt < h &&
    test "$(e2b sandbox files cat "$id" /tmp/r/h.txt)" = hello &&
    e2b sandbox files ls "$id" /tmp/r > ls.out && test_grep h.txt ls.out &&
    e2b sandbox files stat "$id" /tmp/r/h.txt > st.out && test_grep h.txt st.out &&
    e2b sandbox files mkdir "$id" /tmp/r/d/e &&
    e2b sandbox files mv "$id" /tmp/r/h.txt /tmp/r/d/moved.txt &&
    test "$(e2b sandbox files cat "$id" /tmp/r/d/moved.txt)" = hello &&
    e2b sandbox files rm "$id" /tmp/r/d/moved.txt &&
    test_must_fail e2b sandbox files cat "$id" /tmp/r/d/moved.txt 2>/dev/null &&
    mkdir -p tree/a && head -c 100000 /dev/urandom > tree/a/blob && echo x > tree/x &&
    e2b sandbox files upload "$id" tree /tmp/r/tree &&
    e2b sandbox files download "$id" /tmp/r/tree down && diff -r tree down
'

test_expect_success 'files watch sees a change made meanwhile' '
    id=$(cat id) &&
    e2b sandbox files mkdir "$id" /tmp/w &&
    { e2b sandbox files watch "$id" /tmp/w -n 1 --timeout 60 > w.out 2> w.err & } &&
    wait_for 100 grep -q watching w.err &&
    e2b sandbox exec "$id" "echo x > /tmp/w/new" &&
    wait_for 100 grep -q new w.out
'

test_expect_success 'process: background exec, list, attach, kill' '
    id=$(cat id) &&
    pid=$(e2b sandbox exec -b -i "$id" "head -n 1 >/dev/null; echo attached; exit 5") &&
    e2b sandbox process list "$id" > ps && test_grep "^$pid " ps &&
    echo go | test_expect_code 5 e2b sandbox process attach "$id" "$pid" > att && test_grep attached att &&
    p2=$(e2b sandbox exec -b "$id" "sleep 60") &&
    e2b sandbox process kill "$id" "$p2" &&
    wait_for 50 sh -c "! e2b sandbox process list $id | grep -q \"^$p2 \""
'

test_expect_success 'pty and connect: a terminal fed from a pipe' '
    id=$(cat id) &&
    echo "echo in-pty-\$((6*7))" | e2b sandbox pty "$id" > p.out && test_grep in-pty-42 p.out &&
    test_expect_code 4 e2b sandbox pty "$id" sh -c "exit 4" < /dev/null &&
    echo "echo in-connect-\$((6*7)); exit 3" > keys &&
    test_expect_code 3 timeout 120 script -qec "e2b sandbox connect $id" /dev/null < keys > c.out &&
    test_grep in-connect-42 c.out
'

test_expect_success 'set-timeout, metrics, logs' '
    id=$(cat id) &&
    e2b sandbox set-timeout "$id" 900 &&
    e2b sandbox info "$id" --json > i.json &&
    python3 -c "import json,datetime as d; e=json.load(open(\"i.json\"))[\"endAt\"]; left=(d.datetime.fromisoformat(e.replace(\"Z\",\"+00:00\"))-d.datetime.now(d.timezone.utc)).total_seconds(); assert 800 < left <= 900, left" &&
    e2b sandbox metrics "$id" --json > m.json && test_grep cpuCount m.json &&
    e2b sandbox logs "$id" > logs && test_grep "sandbox started" logs
'

test_expect_success 'pause: envd calls refused at once (409), resume: they work again' '
    id=$(cat id) &&
    e2b sandbox pause "$id" &&
    e2b sandbox info "$id" --json | grep -q "\"state\": \"paused\"" &&
    test_expect_code 125 timeout 30 e2b sandbox exec "$id" true 2> err && test_grep "409 The sandbox is paused" err &&
    e2b sandbox resume "$id" &&
    e2b sandbox info "$id" --json | grep -q "\"state\": \"running\"" &&
    test "$(e2b sandbox exec "$id" "echo back")" = back
'

test_expect_success 'store templates by alias and by ID; template list and delete' '
    a=$(e2b sandbox create -d tiny --timeout 60) &&
    test "$(e2b sandbox exec "$a" "read x < /etc/marker; echo \$x")" = from-store &&
    b=$(e2b sandbox create -d "$TID" --timeout 60) &&
    e2b sandbox info "$b" --json | grep -q "\"templateID\": \"$TID\"" &&
    e2b sandbox kill "$a" "$b" &&
    e2b template list > tl && test_grep tiny tl && test_grep doomed tl && test_grep host tl &&
    e2b template delete -y doomed &&
    e2b template list > tl && test_grep -v doomed tl &&
    e2b --api-url "" template list > local && test_grep -v doomed local &&
    test_must_fail e2b template delete -y host 2> err && test_grep "built in" err &&
    test_must_fail e2b sandbox create -d doomed 2> err && test_grep "doomed" err
'

test_expect_success 'limits the API cannot take are refused, not dropped' '
    test_expect_code 2 e2b sandbox create -d host --cpu 1 2> err &&
    test_grep "$URL" err && test_grep "template" err
'

test_expect_success 'kill --all through the API leaves nothing' '
    x=$(e2b sandbox create -d host --timeout 60) && y=$(e2b sandbox create -d host --timeout 60) &&
    e2b sandbox kill --all &&
    test "$(e2b sandbox list --json | grep -c sandboxID)" = 0 &&
    sbx_gone "$x" && sbx_gone "$y" && sbx_gone "$(cat id)"
'

test_done
