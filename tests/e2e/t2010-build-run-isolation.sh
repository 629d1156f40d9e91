#!/bin/sh
# RUN steps of `e2b template build` run as root in the build root: they must
# not reach the host. Attacks from a busybox root (FROM scratch): the chroot
# climb, the privileged system calls of the sandbox escape probe, device
# nodes, mounts; each leaves proof (in outside/ on the host for the climb,
# in the image for the others, next to a mark that the step ran) when it
# works. Ordinary root work (chown, writing /dev/null) still works.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-image.sh"

test_have_root || { echo "1..0 # SKIP template builds need root"; exit 0; }
for tool in busybox debugfs; do
    command -v $tool >/dev/null || { echo "1..0 # SKIP no $tool"; exit 0; }
done
mkdir -p ctx outside
touch outside/.keep
for p in chroot-escape escape-probe; do
    cc -static -O1 -o "ctx/$p" "$TEST_DIR/probes/$p.c" 2> cc.err ||
        { echo "Bail out! cannot build the $p probe: $(cat cc.err)"; exit 1; }
done
img_busybox unused 1 ctx/root > /dev/null 2>&1 && mkdir -p ctx/root/mnt ctx/root/usr
cat > ctx/Dockerfile <<DF
FROM scratch
COPY root/ /
COPY chroot-escape escape-probe /bin/
RUN chroot-escape $TRASH/outside/escaped > /escape.out 2>&1; cat /escape.out
RUN escape-probe > /probe.out 2>&1; cat /probe.out; true
RUN echo ran > /ran-mknod; if mknod /blk b 8 0 2>/dev/null; then echo made > /proof-mknod; fi; ls /dev > /devlist
RUN echo ran > /ran-mount; if mount -t tmpfs x /mnt 2>/dev/null; then echo mounted > /proof-mount; fi; true
RUN echo ok > /dev/null && chown 65534:65534 /mnt && stat -c %u /mnt > /owner
DF

test_expect_success 'the build runs the attacks and succeeds' '
    e2b template build -n iso ctx > id 2>err
'
# what the build left in the template's image
img=$E2B_DATA_DIR/templates/$(cat id 2>/dev/null)/current/rootfs.ext4
for f in escape.out probe.out devlist owner ran-mknod ran-mount proof-mknod proof-mount; do
    debugfs -R "cat /$f" "$img" > "$f" 2>/dev/null
done

test_expect_success 'the chroot climb is stopped: nothing written on the host' '
    cat escape.out && test_grep "^BLOCKED" escape.out &&
    test ! -e outside/escaped && test "$(ls -A outside)" = .keep
'

test_expect_success 'privileged system calls are refused (mount, modules, ptrace, bpf, mknod, kexec...)' '
    cat probe.out && test_grep -v "^ALLOWED" probe.out && test_grep "^0 allowed" probe.out
'

test_expect_success 'no host devices: a minimal /dev, no block device made' '
    printf "fd\nfull\nnull\nrandom\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n" > want &&
    test_cmp want devlist && debugfs -R "stat /blk" "$img" 2>&1 | grep -q "File not found" &&
    test "$(cat ran-mknod)" = ran && test ! -s proof-mknod &&
    test "$(cat ran-mount)" = ran && test ! -s proof-mount
'

test_expect_success 'ordinary root work still works' '
    test "$(cat owner)" = 65534
'

test_done
