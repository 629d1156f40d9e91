#!/bin/sh
# envd defends itself against what it runs: root in a sandbox (same uid as
# envd, no CAP_SYS_PTRACE, as the runtime sets it up) must not reach into
# envd's memory, environment or descriptors through /proc.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-envd.sh"

if ! test_have_root || ! command -v setpriv >/dev/null; then
    test_skip 'envd is not dumpable' 'needs root and setpriv'
    test_done
fi
# As in a sandbox: the bounding set lacks CAP_SYS_PTRACE, for envd and so
# for everything it starts.
ENVD_REAL=$ENVD_BIN
ENVD_BIN=$TRASH/envd-noptrace
printf '#!/bin/sh\nexec setpriv --bounding-set -sys_ptrace "%s" "$@"\n' "$ENVD_REAL" >"$ENVD_BIN"
chmod 755 "$ENVD_BIN"
envd_start

cat >"$TRASH/whoami.py" <<'PY'
import os
eff = int(open("/proc/self/status").read().split("CapEff:")[1].split()[0], 16)
print(os.getuid(), "ptrace" if eff >> 19 & 1 else "no-ptrace")
PY
cat >"$TRASH/attack.py" <<'PY'
import sys
pid = sys.argv[1]
for path, mode in (("mem", "r+b"), ("mem", "rb"), ("environ", "rb"), ("fd/0", "rb"), ("cmdline", "rb")):
    try:
        with open("/proc/%s/%s" % (pid, path), mode) as f:
            if mode == "r+b":
                f.seek(0x400000)  # where a write would go; opening is the breach
            else:
                f.read(1)
        print(path, mode, "OPEN")
    except OSError as e:
        print(path, mode, "refused")
PY
cat >"$TRASH/self.py" <<'PY'
print(open("/proc/self/environ", "rb").read().count(b"HOME="))
PY

# run SCRIPT [ARGS]: python3 SCRIPT started by envd; its stdout into $TRASH/said
run() {
    local args
    args=$(printf ',"%s"' "$@")
    srpc process.Process/Start "{\"process\":{\"cmd\":\"python3\",\"args\":[${args#,}]}}" >/dev/null &&
    unframe <"$TRASH/out" | python3 -c 'import sys,json,base64
for l in sys.stdin:
    if l.startswith("{"):
        d = json.loads(l).get("event", {}).get("data", {})
        for k in ("stdout", "stderr"):
            if k in d: sys.stdout.write(base64.b64decode(d[k]).decode())' >"$TRASH/said"
    cat "$TRASH/said"
}

test_expect_success 'the setup is a real one: what envd runs is root without CAP_SYS_PTRACE' '
    run "$TRASH/whoami.py" && grep -qx "0 no-ptrace" "$TRASH/said"
'

# environ is left out of the verdict: some kernels let the same uid read
# it even from an undumpable process. envd keeps no secret there (the
# access token comes by /init, into memory); cmdline is public anyway.
test_expect_success 'root in the sandbox cannot open /proc/<envd>/mem (read or write) nor its fds' '
    run "$TRASH/attack.py" "$ENVD_PID" &&
    grep -qx "mem r+b refused" "$TRASH/said" && grep -qx "mem rb refused" "$TRASH/said" &&
    grep -qx "fd/0 rb refused" "$TRASH/said" && grep -qx "cmdline rb OPEN" "$TRASH/said" && envd_alive
'

test_expect_success 'what envd starts is dumpable again (its own /proc is its own)' '
    run "$TRASH/self.py" && grep -qx 1 "$TRASH/said"
'

test_done
