#!/bin/sh
# envd streams: keepalives, StreamInput (client stream), several clients on
# one process, tags, polled watchers, flow control, the unix socket listener.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-envd.sh"

envd_start
W=$TRASH/watched
mkdir -p "$W"

bg_start() { # OUT JSON [curl args]: a Start stream in the background
    local out=$1 body=$2
    shift 2
    frame "$body" >"$out.req"
    curl -s -N -o "$out" -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$out.req" "$@" "$ENVD_URL/process.Process/Start" &
}

listed() { # TAG: the process with this tag is listed
    rpc process.Process/List "{}" >/dev/null && grep -q "\"tag\":\"$1\"" "$TRASH/out"
}

test_expect_success 'keepalive events arrive at the requested interval' '
    st=$(srpc process.Process/Start "{\"process\":{\"cmd\":\"sleep\",\"args\":[\"2.5\"]}}" -H "Keepalive-Ping-Interval: 1") &&
    expect_status "$st" 200 &&
    test "$(grep -c "\"keepalive\":{}" "$TRASH/out")" -ge 2 && grep -qx "END {}" "$TRASH/out"
'

test_expect_success 'StreamInput feeds stdin of a tagged process' '
    bg_start "$TRASH/cat.out" "{\"process\":{\"cmd\":\"cat\"},\"tag\":\"catty\",\"stdin\":true}" &&
    wait_for 50 listed catty &&
    { frame "{\"start\":{\"process\":{\"tag\":\"catty\"}}}"; frame "{\"keepalive\":{}}";
      frame "{\"data\":{\"input\":{\"stdin\":\"$(printf "via stream\n" | base64)\"}}}"; } >"$TRASH/si.bin" &&
    st=$(curl -s -o "$TRASH/raw" -w "%{http_code}" -X POST -H "Content-Type: application/connect+json" \
        -H "Transfer-Encoding: chunked" --data-binary @"$TRASH/si.bin" "$ENVD_URL/process.Process/StreamInput") &&
    unframe <"$TRASH/raw" >"$TRASH/out" && expect_status "$st" 200 && grep -qx "END {}" "$TRASH/out" &&
    st=$(rpc process.Process/CloseStdin "{\"process\":{\"tag\":\"catty\"}}") && expect_status "$st" 200 &&
    wait &&
    unframe <"$TRASH/cat.out" >"$TRASH/out" &&
    grep -q "\"stdout\":\"$(printf "via stream\n" | base64)\"" "$TRASH/out" && grep -q "exit status 0" "$TRASH/out"
'

test_expect_success 'StreamInput to an unknown process is not_found' '
    frame "{\"start\":{\"process\":{\"pid\":999999}}}" >"$TRASH/si.bin" &&
    st=$(curl -s -o "$TRASH/raw" -w "%{http_code}" -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$TRASH/si.bin" "$ENVD_URL/process.Process/StreamInput") &&
    unframe <"$TRASH/raw" >"$TRASH/out" && grep -q "^END .*not_found" "$TRASH/out" && envd_alive
'

# gate NAME: shell that waits (bounded) until $TRASH/NAME exists, so a test
# decides when a process goes on instead of racing a sleep.
gate() { echo "i=0; while ! test -e $TRASH/$1 && test \$i -lt 6000; do sleep 0.1; i=\$((i+1)); done"; }

test_expect_success 'two clients connected to one process both get its output' '
    bg_start "$TRASH/one.out" "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"$(gate go-shared); echo shared\"]},\"tag\":\"shared\"}" &&
    wait_for 50 listed shared &&
    frame "{\"process\":{\"tag\":\"shared\"}}" >"$TRASH/conn.req" &&
    { curl -s -N -m 120 -o "$TRASH/two.out" -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$TRASH/conn.req" "$ENVD_URL/process.Process/Connect" & } &&
    wait_for 600 grep -q start "$TRASH/two.out" &&
    touch "$TRASH/go-shared" && wait &&
    unframe <"$TRASH/two.out" >"$TRASH/out" &&
    grep -q "c2hhcmVkCg==" "$TRASH/out" && grep -q "exit status 0" "$TRASH/out" &&
    unframe <"$TRASH/one.out" | grep -q "c2hhcmVkCg=="
'

test_expect_success 'a Connect deadline ends that stream, not the process' '
    bg_start "$TRASH/long.out" "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"$(gate go-long)\"]},\"tag\":\"long\"}" &&
    wait_for 50 listed long &&
    st=$(srpc process.Process/Connect "{\"process\":{\"tag\":\"long\"}}" -H "Connect-Timeout-Ms: 200") &&
    grep -q "^END .*deadline_exceeded" "$TRASH/out" && listed long &&
    touch "$TRASH/go-long" && wait && unframe <"$TRASH/long.out" | grep -q "exit status 0"
'

test_expect_success 'SIGTERM through SendSignal ends with signal: terminated' '
    bg_start "$TRASH/term.out" "{\"process\":{\"cmd\":\"sleep\",\"args\":[\"30\"]},\"tag\":\"term\"}" &&
    wait_for 50 listed term &&
    st=$(rpc process.Process/SendSignal "{\"process\":{\"tag\":\"term\"},\"signal\":\"SIGNAL_SIGTERM\"}") &&
    expect_status "$st" 200 && wait &&
    unframe <"$TRASH/term.out" | grep -q "\"exitCode\":-1.*signal: terminated"
'

if [ -n "${E2B_TEST_ASAN:-}" ]; then
    test_skip 'a slow reader does not make envd buffer without bound' 'memory use is not meaningful under ASan'
else
test_expect_success 'a slow reader does not make envd buffer without bound' '
    frame "{\"process\":{\"cmd\":\"yes\"}}" >"$TRASH/yes.bin" &&
    { timeout 5 curl -s --limit-rate 1M -o /dev/null -X POST -H "Content-Type: application/connect+json" \
        -H "Connect-Timeout-Ms: 2000" --data-binary @"$TRASH/yes.bin" \
        "$ENVD_URL/process.Process/Start" || true; } &&
    hwm=$(awk "/^VmHWM/ {print \$2}" /proc/$ENVD_PID/status) &&
    echo "VmHWM $hwm kB" && test "$hwm" -lt 16384 && envd_alive
'
# Descendants (eight yes on a 1 MiB pipe, F_SETPIPE_SZ) keep writing after
# the process exited: envd must not read that faster than the client takes it.
test_expect_success 'output left after the exit goes no faster than a slow reader takes it' '
    { echo 5 >/proc/$ENVD_PID/clear_refs 2>/dev/null || :; } &&
    big_pipe="python3 -c \\\"import fcntl; fcntl.fcntl(1, 1031, 1 << 20)\\\"" &&
    frame "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"$big_pipe; for i in 1 2 3 4 5 6 7 8; do yes & done; sleep 0.3; exit 0\"]}}" >"$TRASH/left.bin" &&
    { timeout 5 curl -s --limit-rate 1M -o /dev/null -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$TRASH/left.bin" "$ENVD_URL/process.Process/Start" || true; } &&
    hwm=$(awk "/^VmHWM/ {print \$2}" /proc/$ENVD_PID/status) &&
    echo "VmHWM $hwm kB" && test "$hwm" -lt 16384 && envd_alive
'
fi

# send_in TAG FILE OUT: one SendInput of the 1 MiB in FILE; status into OUT.
send_in() {
    curl -s -m 120 -o "$3.body" -w "%{http_code}" -X POST -H "Content-Type: application/json" \
        --data-binary @"$2" "$ENVD_URL/process.Process/SendInput" >"$3"
}
hwm() { awk '/^VmHWM/ {print $2}' /proc/$ENVD_PID/status; }
# hwm_reset: start envd's peak RSS afresh ("5" to clear_refs), so a test
# bounds its own peak, not an earlier test's.
hwm_reset() { echo 5 >/proc/$ENVD_PID/clear_refs 2>/dev/null || true; }
got_429() { grep -qx 429 "$TRASH/in3" || grep -qx 429 "$TRASH/in4"; }

test_expect_success 'stdin nobody reads: SendInput waits, then resource_exhausted; nothing lost' '
    bg_start "$TRASH/flood.out" "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"$(gate go-flood); wc -c\"]},\"tag\":\"flood\",\"stdin\":true}" &&
    flood_pid=$! &&
    wait_for 50 listed flood &&
    head -c 1048576 /dev/urandom >"$TRASH/mib" && hwm_reset &&
    printf "{\"process\":{\"tag\":\"flood\"},\"input\":{\"stdin\":\"%s\"}}" "$(base64 -w0 "$TRASH/mib")" >"$TRASH/mib.json" &&
    send_in flood "$TRASH/mib.json" "$TRASH/in1" && test "$(cat "$TRASH/in1")" = 200 &&
    send_in flood "$TRASH/mib.json" "$TRASH/in2" && test "$(cat "$TRASH/in2")" = 200 &&
    { send_in flood "$TRASH/mib.json" "$TRASH/in3" & p3=$!; } &&
    { send_in flood "$TRASH/mib.json" "$TRASH/in4" & p4=$!; } &&
    wait_for 300 got_429 &&
    i=5 && while [ $i -le 64 ]; do
        send_in flood "$TRASH/mib.json" "$TRASH/in$i" && test "$(cat "$TRASH/in$i")" = 429 || return 1
        i=$((i + 1))
    done &&
    grep -q resource_exhausted "$TRASH/in64.body" &&
    if [ -z "${E2B_TEST_ASAN:-}" ]; then echo "VmHWM $(hwm) kB" && test "$(hwm)" -lt 32768; fi &&
    touch "$TRASH/go-flood" && wait $p3 && wait $p4 &&
    test "$(cat "$TRASH/in3"),$(cat "$TRASH/in4")" = "200,429" -o "$(cat "$TRASH/in3"),$(cat "$TRASH/in4")" = "429,200" &&
    st=$(rpc process.Process/CloseStdin "{\"process\":{\"tag\":\"flood\"}}") && expect_status "$st" 200 &&
    wait $flood_pid && unframe <"$TRASH/flood.out" >"$TRASH/out" &&
    grep -q "\"stdout\":\"$(printf "%s\n" $((3 * 1048576)) | base64)\"" "$TRASH/out" && envd_alive
'

# stalled PORT PID: the client PID is done, or envd has left the same
# unread bytes on its connection for ten samples in a row (it stopped
# reading: a reading envd empties its socket again and again).
stalled() {
    local q
    kill -0 "$2" 2>/dev/null || return 0
    q=$(ss -tnH state established "( sport = :$ENVD_PORT and dport = :$1 )" | awk '{print $1}')
    if test -n "$q" && test "$q" -gt 0 && test "$q" = "$(tail -n 1 "$TRASH/stall")"; then
        echo "$q" >>"$TRASH/stall"
    else
        echo "$q" >"$TRASH/stall"
    fi
    test "$(wc -l <"$TRASH/stall")" -ge 10
}

test_expect_success 'StreamInput stops reading its body while the process does not read' '
    bg_start "$TRASH/sin.out" "{\"process\":{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"$(gate go-sin); wc -c\"]},\"tag\":\"sin\",\"stdin\":true}" &&
    sin_pid=$! &&
    wait_for 50 listed sin &&
    python3 -c "import sys,struct,base64,os,json
def fr(o): b=json.dumps(o).encode(); sys.stdout.buffer.write(bytes([0])+struct.pack(\">I\",len(b))+b)
fr({\"start\":{\"process\":{\"tag\":\"sin\"}}})
for i in range(512): fr({\"data\":{\"input\":{\"stdin\":base64.b64encode(os.urandom(65536)).decode()}}})" >"$TRASH/sin.bin" &&
    lport=$(free_port) && hwm_reset &&
    { curl -s -m 900 --local-port "$lport" -o "$TRASH/sin.raw" -w "%{http_code}" -X POST \
        -H "Content-Type: application/connect+json" --data-binary @"$TRASH/sin.bin" \
        "$ENVD_URL/process.Process/StreamInput" >"$TRASH/sin.st" & cpid=$!; } &&
    : >"$TRASH/stall" && wait_for 600 stalled "$lport" $cpid &&
    { kill -0 $cpid 2>/dev/null || { echo "the client ended before envd stopped reading: $(cat "$TRASH/sin.st")"; false; }; } &&
    if [ -z "${E2B_TEST_ASAN:-}" ]; then echo "VmHWM $(hwm) kB" && test "$(hwm)" -lt 16384; fi &&
    touch "$TRASH/go-sin" && wait $cpid && test "$(cat "$TRASH/sin.st")" = 200 &&
    unframe <"$TRASH/sin.raw" | grep -qx "END {}" &&
    st=$(rpc process.Process/CloseStdin "{\"process\":{\"tag\":\"sin\"}}") && expect_status "$st" 200 &&
    wait $sin_pid && unframe <"$TRASH/sin.out" >"$TRASH/out" &&
    grep -q "\"stdout\":\"$(printf "%s\n" $((512 * 65536)) | base64)\"" "$TRASH/out" && envd_alive
'

test_expect_success 'polled watcher: create, get events, remove' '
    st=$(rpc filesystem.Filesystem/CreateWatcher "{\"path\":\"$W\",\"recursive\":true,\"includeEntry\":true}") &&
    expect_status "$st" 200 &&
    id=$(sed -n "s/.*\"watcherId\":\"\\([^\"]*\\)\".*/\\1/p" "$TRASH/out") && test -n "$id" &&
    echo hi >"$W/polled.txt" && mkdir "$W/d" && sleep 0.2 && echo deep >"$W/d/deep.txt" && rm "$W/polled.txt" && sleep 0.2 &&
    st=$(rpc filesystem.Filesystem/GetWatcherEvents "{\"watcherId\":\"$id\"}") && expect_status "$st" 200 &&
    grep -q "\"name\":\"polled.txt\",\"type\":\"EVENT_TYPE_CREATE\"" "$TRASH/out" &&
    grep -q "\"name\":\"polled.txt\",\"type\":\"EVENT_TYPE_REMOVE\"" "$TRASH/out" &&
    grep -q "\"name\":\"d/deep.txt\"" "$TRASH/out" && grep -q "\"entry\":{" "$TRASH/out" &&
    st=$(rpc filesystem.Filesystem/GetWatcherEvents "{\"watcherId\":\"$id\"}") &&
    test "$(cat "$TRASH/out")" = "{\"events\":[]}" &&
    st=$(rpc filesystem.Filesystem/RemoveWatcher "{\"watcherId\":\"$id\"}") && expect_status "$st" 200 &&
    st=$(rpc filesystem.Filesystem/GetWatcherEvents "{\"watcherId\":\"$id\"}") && expect_status "$st" 404
'

wid() { sed -n "s/.*\"watcherId\":\"\\([^\"]*\\)\".*/\\1/p" "$TRASH/out"; }
many() { python3 -c "import os,sys
for i in range(int(sys.argv[2])): os.close(os.open(\"%s/f%d\" % (sys.argv[1], i), os.O_CREAT | os.O_WRONLY))" "$@"; }
QMAX=$(cat /proc/sys/fs/inotify/max_queued_events 2>/dev/null || echo 16384)

test_expect_success 'polled watcher: past 10000 queued events the next poll says events were lost' '
    mkdir -p "$TRASH/busy" &&
    st=$(rpc filesystem.Filesystem/CreateWatcher "{\"path\":\"$TRASH/busy\"}") && expect_status "$st" 200 &&
    id=$(wid) && many "$TRASH/busy" 12000 &&
    st=$(rpc filesystem.Filesystem/GetWatcherEvents "{\"watcherId\":\"$id\"}") &&
    expect_status "$st" 429 && expect_code resource_exhausted && grep -q "events were lost" "$TRASH/out" &&
    st=$(rpc filesystem.Filesystem/GetWatcherEvents "{\"watcherId\":\"$id\"}") && expect_status "$st" 404
'

test_expect_success 'WatchDir ends with resource_exhausted when the kernel queue overflows' '
    mkdir -p "$TRASH/flooded" &&
    frame "{\"path\":\"$TRASH/flooded\"}" >"$TRASH/fl.req" &&
    { curl -s -N --max-time 60 -o "$TRASH/fl.raw" -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$TRASH/fl.req" "$ENVD_URL/filesystem.Filesystem/WatchDir" & } &&
    wait_for 50 test -s "$TRASH/fl.raw" &&
    kill -STOP $ENVD_PID && { many "$TRASH/flooded" $((QMAX + 500)); kill -CONT $ENVD_PID; } &&
    wait && unframe <"$TRASH/fl.raw" >"$TRASH/out" &&
    grep -q "^END .*resource_exhausted.*overflowed" "$TRASH/out" && envd_alive
'

# getev URL ID [STATUS [TEXT]]: GetWatcherEvents answers STATUS (with TEXT in its body)
getev() {
    local st
    st=$(curl -s -o "$TRASH/ev.out" -w "%{http_code}" -X POST -H "Content-Type: application/json" \
        -d "{\"watcherId\":\"$2\"}" "$1/filesystem.Filesystem/GetWatcherEvents") &&
    test "$st" = "${3:-200}" && grep -q -e "${4:-.}" "$TRASH/ev.out"
}

test_expect_success 'polled watcher: a removed root hands out its last events, then not_found' '
    mkdir -p "$TRASH/doomed" &&
    st=$(rpc filesystem.Filesystem/CreateWatcher "{\"path\":\"$TRASH/doomed\"}") && id=$(wid) &&
    echo x >"$TRASH/doomed/last.txt" && rm -rf "$TRASH/doomed" &&
    wait_for 50 getev "$ENVD_URL" "$id" 200 last.txt &&
    wait_for 50 getev "$ENVD_URL" "$id" 404 "watched directory was removed"
'

# A poll restarts the idle timer, so this one waits without polling; a timer
# that expired is handled before a request that came after it (no race).
test_expect_success 'a polled watcher nobody polls expires (--watcher-idle-timeout)' '
    iport=$(free_port) &&
    { "$ENVD_BIN" --listen "127.0.0.1:$iport" --watcher-idle-timeout 1 >"$TRASH/idle.log" 2>&1 & } &&
    ipid=$! && test_when_finished "kill $ipid" &&
    wait_for 50 curl -sf -o /dev/null "http://127.0.0.1:$iport/health" &&
    curl -s -o "$TRASH/out" -X POST -H "Content-Type: application/json" -d "{\"path\":\"$W\"}" \
        "http://127.0.0.1:$iport/filesystem.Filesystem/CreateWatcher" && id=$(wid) && test -n "$id" &&
    getev "http://127.0.0.1:$iport" "$id" 200 &&
    sleep 1.5 && getev "http://127.0.0.1:$iport" "$id" 404 &&
    test_expect_code 2 "$ENVD_BIN" --watcher-idle-timeout 0 2>err && test_grep "watcher-idle-timeout" err
'

test_expect_success 'WatchDir on a file or a missing path fails' '
    echo x >"$TRASH/plain" &&
    st=$(srpc filesystem.Filesystem/WatchDir "{\"path\":\"$TRASH/plain\"}") &&
    grep -q "^END .*invalid_argument" "$TRASH/out" &&
    st=$(srpc filesystem.Filesystem/WatchDir "{\"path\":\"$TRASH/missing\"}") &&
    grep -q "^END .*not_found" "$TRASH/out" && envd_alive
'

test_expect_success 'WatchDir streams a start event then file events' '
    frame "{\"path\":\"$W\"}" >"$TRASH/w.req" &&
    { { curl -s -N --max-time 4 -o "$TRASH/w.raw" -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$TRASH/w.req" "$ENVD_URL/filesystem.Filesystem/WatchDir" || true; } & } &&
    wait_for 30 test -s "$TRASH/w.raw" && echo x >"$W/streamed.txt" && wait &&
    unframe <"$TRASH/w.raw" >"$TRASH/out" &&
    head -n 1 "$TRASH/out" | grep -qx "{\"start\":{}}" &&
    grep -q "\"name\":\"streamed.txt\",\"type\":\"EVENT_TYPE_CREATE\"" "$TRASH/out" &&
    grep -q "\"name\":\"streamed.txt\",\"type\":\"EVENT_TYPE_WRITE\"" "$TRASH/out" && envd_alive
'

test_expect_success 'a file name that is not UTF-8 is U+FFFD in WatchDir, ListDir and Stat' '
    bad=$(printf "x\377") && fffd=x$(printf "\357\277\275") &&
    mkdir -p "$TRASH/bad8" && frame "{\"path\":\"$TRASH/bad8\"}" >"$TRASH/b8.req" &&
    { { curl -s -N --max-time 3 -o "$TRASH/b8.raw" -X POST -H "Content-Type: application/connect+json" \
        --data-binary @"$TRASH/b8.req" "$ENVD_URL/filesystem.Filesystem/WatchDir" || true; } & } &&
    wait_for 30 test -s "$TRASH/b8.raw" && : >"$TRASH/bad8/$bad" && wait &&
    unframe <"$TRASH/b8.raw" >"$TRASH/out" &&
    grep -qF "\"name\":\"$fffd\",\"type\":\"EVENT_TYPE_CREATE\"" "$TRASH/out" && envd_alive &&
    st=$(rpc filesystem.Filesystem/ListDir "{\"path\":\"$TRASH/bad8\"}") &&
    expect_status "$st" 200 && grep -qF "\"name\":\"$fffd\"" "$TRASH/out" &&
    grep -qF "\"path\":\"$TRASH/bad8/$fffd\"" "$TRASH/out"
'

test_expect_success 'envd serves a unix socket alone with --unix --no-tcp' '
    { "$ENVD_BIN" --unix "$TRASH/envd.sock" --no-tcp >"$TRASH/unix.log" 2>&1 & } &&
    upid=$! && test_when_finished "kill $upid" &&
    wait_for 50 test -S "$TRASH/envd.sock" &&
    test "$(curl -s -o /dev/null -w "%{http_code}" --unix-socket "$TRASH/envd.sock" http://x/health)" = 204 &&
    curl -s --unix-socket "$TRASH/envd.sock" -X POST -H "Content-Type: application/json" -d "{}" \
        http://x/process.Process/List | grep -q "processes"
'

test_expect_success 'GET /files supports gzip, HEAD and keep-alive reuse' '
    head -c 100000 /dev/urandom >"$TRASH/blob" &&
    curl -s --compressed -o "$TRASH/blob.gz.out" "$ENVD_URL/files?path=$TRASH/blob" &&
    cmp "$TRASH/blob" "$TRASH/blob.gz.out" &&
    curl -s -H "Accept-Encoding: gzip" -D "$TRASH/hdr" -o /dev/null "$ENVD_URL/files?path=$TRASH/blob" &&
    grep -qi "^Content-Encoding: gzip" "$TRASH/hdr" &&
    curl -s -I "$ENVD_URL/files?path=$TRASH/blob" | grep -qi "^Content-Length: 100000" &&
    curl -s -o /dev/null -o /dev/null -w "%{num_connects}\n" "$ENVD_URL/health" "$ENVD_URL/health" >"$TRASH/nc" &&
    test "$(sed -n 2p "$TRASH/nc")" = 0
'

test_expect_success '/files/compose concatenates and deletes the sources' '
    printf "a-" >"$TRASH/p1" && printf "b-" >"$TRASH/p2" && printf "c" >"$TRASH/p3" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST -H "Content-Type: application/json" \
        --data "{\"destination\":\"$TRASH/joined/all\",\"source_paths\":[\"$TRASH/p1\",\"$TRASH/p2\",\"$TRASH/p3\"]}" \
        "$ENVD_URL/files/compose") &&
    expect_status "$st" 200 && test "$(cat "$TRASH/joined/all")" = "a-b-c" &&
    test ! -e "$TRASH/p1" && test ! -e "$TRASH/p3" && grep -q "\"type\":\"file\"" "$TRASH/out" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST --data "{\"destination\":\"$TRASH/x\",\"source_paths\":[\"$TRASH/none\"]}" \
        "$ENVD_URL/files/compose") &&
    expect_status "$st" 404 && test ! -e "$TRASH/x" &&
    st=$(curl -s -o "$TRASH/out" -w "%{http_code}" -X POST --data "{\"destination\":\"$TRASH/x\"}" "$ENVD_URL/files/compose") &&
    expect_status "$st" 400 && envd_alive
'

test_done
