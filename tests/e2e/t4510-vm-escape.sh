#!/bin/sh
# The escape suite (t4100's attacks) from inside a VM sandbox: the host's
# files, processes, loopback and kernel stay out of reach behind the VM
# boundary. What a VM changes is tested as such, not skipped: root in the
# guest may mount, load modules, set the clock or reboot, but all of that is
# the guest kernel's, so those probes check that the host is untouched (its
# mounts, modules, swap, hostname, clock) and that a guest that reboots
# itself just ends its sandbox. Each VM restores the template's snapshot.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

export E2B_VM_ACCEL=${E2B_VM_ACCEL:-tcg}
command -v qemu-system-x86_64 >/dev/null || { echo "1..0 # SKIP no qemu-system-x86_64"; exit 0; }
command -v busybox >/dev/null || { echo "1..0 # SKIP no busybox"; exit 0; }
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "1..0 # SKIP no guest kernel in /boot"; exit 0; }

vm_gone() {
    sbx_gone "$1" || return 1
    ! pgrep -f "qemu-system-x86_64 -name e2b-$1" >/dev/null || { echo "QEMU of $1 left"; return 1; }
}
vm_wait_gone() { wait_for 100 vm_gone "$1" || vm_gone "$1"; }

# The template: static busybox (with its sh, whose fork bomb keeps going),
# saved as a VM by its build.
mkdir -p bb/root/bin bb/root/etc bb/root/tmp && cp "$(command -v busybox)" bb/root/bin/ &&
for a in $(bb/root/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "bb/root/bin/$a"; done &&
printf "root:x:0:0:root:/root:/bin/sh\n" > bb/root/etc/passwd && printf "root:x:0:\n" > bb/root/etc/group &&
printf "FROM scratch\nCOPY root/ /\n" > bb/e2b.Dockerfile &&
e2b template build -n vmesc -p bb --runtime vm > tid 2>build.err ||
    { echo "Bail out! cannot build the template: $(cat build.err)"; exit 1; }
cc -static -O1 -o "$TRASH/probe" "$TEST_DIR/probes/escape-probe.c" 2>"$TRASH/cc.err" ||
    { echo "Bail out! cannot build the probe: $(cat "$TRASH/cc.err")"; exit 1; }
sbx_create vmesc --timeout 600 --memory 256 --disk 64 2>"$TRASH/err" ||
    { echo "Bail out! cannot create a VM sandbox: $(cat "$TRASH/err")"; exit 1; }
A=$SBX
sbx_create vmesc --timeout 600 || { echo "Bail out! cannot create a second VM sandbox"; exit 1; }
B=$SBX
e2b sandbox exec "$A" "cat > /tmp/probe && chmod 755 /tmp/probe" < "$TRASH/probe"

LPORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 "$LPORT" > "$TRASH/listener.log" 2>&1 &
LISTENER=$!
test_atexit "kill $LISTENER"
wait_for 100 curl -sf -o /dev/null "http://127.0.0.1:$LPORT/" || echo "# listener not up"
: > "$TRASH/listener.log" # from now on, any request in it came from a sandbox

healthy() { e2b sandbox exec "$B" true && e2b sandbox exec "$A" true; }
# What root in a guest could change if the guest were the host. (Its
# probe stops at ptrace of envd and of init, which freeze the guest's end
# of the link; it goes on to reboot the guest, which ends the sandbox.)
host_view() {
    { grep -c . /proc/modules; cut -d" " -f1 /proc/modules | sort; cat /proc/swaps; hostname
      grep " /mnt \| /usr .*- tmpfs none" /proc/self/mountinfo; ls /sys/fs/cgroup; } 2>&1
}

test_expect_success 'as the sandbox user, the guest kernel refuses what t4100 tries, and the host loopback is out of reach' '
    envd=$(e2b sandbox exec "$A" "pidof envd") && test -n "$envd" &&
    { e2b sandbox exec "$A" "/tmp/probe $LPORT $envd" > probe.out; rc=$?; } && cat probe.out && echo "exit $rc" &&
    test "$(e2b sandbox exec "$A" "id -u")" != 0 &&
    for a in "mount tmpfs" "remount root read-write" "init_module" "finit_module" "delete_module" "bpf" \
        "ptrace envd" "ptrace init" "pidfd_getfd of envd" "read and write envd.s memory through /proc/PID/mem" \
        "read and write init.s memory through /proc/1/mem" "kexec_load" "reboot" "clock_settime" "swapon" \
        "swapoff" "iopl" "open_by_handle_at" "write /proc/sysrq-trigger" "read /proc/kcore" \
        "connect to the host.s 127.0.0.1 listener"; do
        test_grep "^BLOCKED $a" probe.out || return 1
    done &&
    ! grep -q "GET\|CONNECT" "$TRASH/listener.log" && healthy
'

test_expect_success 'as root in the guest, mounts, modules, clock and reboot are the guest kernel'"'"'s: the host is untouched and the VM just ends' '
    host_view > before && t0=$(date +%s) &&
    sbx_create vmesc --timeout 600 && R=$SBX &&
    e2b sandbox exec "$R" "cat > /tmp/probe && chmod 755 /tmp/probe" < "$TRASH/probe" &&
    envd=$(e2b sandbox exec "$R" "pidof envd") && e2b sandbox exec -u root "$R" "mkdir -p /mnt" &&
    test_must_fail e2b sandbox exec -u root "$R" "nc -w 5 10.0.2.2 $LPORT < /dev/null || nc -w 5 127.0.0.1 $LPORT < /dev/null" &&
    { e2b sandbox exec -u root "$R" "/tmp/probe $LPORT $envd" > root.out 2>&1 || :; } && cat root.out &&
    test_grep "^ALLOWED mount tmpfs" root.out && test_grep "^ALLOWED umount /proc" root.out &&
    vm_wait_gone "$R" &&
    test_must_fail e2b sandbox info "$R" 2>err && test_grep "it ended" err &&
    host_view > after && test_cmp before after &&
    t1=$(date +%s) && test $((t1 - t0)) -ge 0 && test $((t1 - t0)) -lt 300 &&
    ! grep -q "GET\|CONNECT" "$TRASH/listener.log" && healthy
'

test_expect_success 'host files and processes are not there: only the guest'"'"'s' '
    echo "host secret" > "$TRASH/secret" && chmod 600 "$TRASH/secret" &&
    test_must_fail e2b sandbox exec -u root "$A" "cat $TRASH/secret" &&
    test_must_fail e2b sandbox exec -u root "$A" "ls $TRASH" &&
    e2b sandbox exec -u root "$A" "cat /proc/*/cmdline 2>/dev/null | tr \"\\0\" \" \"" > cmdlines &&
    test_grep -v "http.server" cmdlines && test_grep -v "qemu-system" cmdlines &&
    test_must_fail e2b sandbox exec -u root "$A" "kill -0 $LISTENER 2>/dev/null && grep -q http.server /proc/$LISTENER/cmdline" &&
    kill -0 "$LISTENER" &&
    test "$(e2b sandbox exec -u root "$A" "readlink /proc/1/root")" = / &&
    e2b sandbox exec -u root "$A" "ls /proc/1/root/" > root1 && test_grep -v "^boot$\|^work$" root1 &&
    test_must_fail e2b sandbox exec -u root "$A" "grep -q $(hostname) /proc/sys/kernel/hostname" && healthy
'

test_expect_success 'a symlink through the files API, or planted where envd listens, stays inside the VM' '
    e2b sandbox exec "$A" "ln -sf / /tmp/hostroot" &&
    sock=$E2B_RUNTIME_DIR/sandboxes/$A/envd.sock &&
    test "$(curl -s --unix-socket "$sock" -o got -w "%{http_code}" "http://x/files?path=/tmp/hostroot$TRASH/secret&username=root")" = 404 &&
    test_grep -v "host secret" got &&
    test_must_fail e2b sandbox exec -u root "$A" "ln -sf $TRASH/secret /run/e2b/envd.sock" &&
    test "$(curl -s --unix-socket "$sock" -o /dev/null -w "%{http_code}" http://x/health)" = 204 &&
    test ! -L "$sock" && ! ls "$E2B_RUNTIME_DIR/sandboxes/$A" | grep -q "secret\|planted"
'

test_expect_success 'a fork bomb, memory exhaustion and a full disk stay in the guest; killing the sandbox ends them' '
    sbx_create vmesc --timeout 600 --memory 128 --disk 16 && C=$SBX &&
    test_must_fail e2b sandbox exec "$C" "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1" > dd.out &&
    test_grep "No space left" dd.out &&
    disk=$E2B_RUNTIME_DIR/sandboxes/$C/disk.ext4 && test "$(stat -c %s "$disk")" = $((16 << 20)) &&
    e2b sandbox exec "$C" "rm /tmp/fill" &&
    { e2b sandbox exec --timeout 20 "$C" "dd if=/dev/zero of=/dev/null bs=300M count=1" > /dev/null 2>&1 || :; } &&
    test "$(e2b sandbox exec "$C" "echo survived")" = survived &&
    before=$(ps -e --no-headers | wc -l) &&
    e2b sandbox exec -b "$C" "bomb() { bomb | bomb & }; bomb" > /dev/null &&
    { e2b sandbox exec --timeout 5 "$C" "sleep 1; ls /proc | grep -c \"^[0-9]\"" || :; } &&
    test "$(pgrep -fc "qemu-system-x86_64 -name e2b-$C")" = 1 &&
    test $(($(ps -e --no-headers | wc -l) - before)) -lt 100 &&
    healthy &&
    e2b sandbox kill "$C" && vm_wait_gone "$C"
'

test_expect_success 'the host stayed healthy' '
    test "$(cut -d" " -f4 /proc/loadavg | cut -d/ -f2)" -lt 5000 &&
    e2b sandbox list > /dev/null && e2b sandbox exec "$B" "echo fine" | grep -q fine
'

test_done
