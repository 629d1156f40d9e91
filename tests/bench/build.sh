#!/bin/sh
# bench/build: in one run, on the same Dockerfile and base image,
#  (a) `e2b template build` against `buildah bud`, both pulling a busybox
#      image from Debian's docker-registry on loopback (goal: e2b <= half);
#      buildah with its overlay driver (its fast one, native overlayfs) and
#      with vfs (copies every layer), each from cold storage;
#  (b) the root tree -> ext4 step of the build (`e2b __ext4`) against plain
#      `mke2fs -t ext4 -d` on the same tree (goal: no slower). lib/ext4 runs
#      mke2fs -d itself, so this measures e2b's own overhead around it
#      (sizing walk, process start), not a different ext4 writer.
# Exits 1 when a comparison could not be made (no buildah, buildah failed).
set -u
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${E2B_BUILD_DIR:-$SRC_DIR/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$SRC_DIR/$BUILD_DIR ;; esac
E2B=$BUILD_DIR/e2b
T=$(mktemp -d "${TMPDIR:-/tmp}/e2b-bench-build.XXXXXX")
REG_PID=
STATUS=0
buildah_d() { # driver args...: buildah with its own cold storage per driver
    local d=$1
    shift
    buildah --storage-driver "$d" --root "$T/buildah-$d" --runroot "$T/buildah-run-$d" "$@"
}
cleanup() {
    [ -z "$REG_PID" ] || kill "$REG_PID" 2>/dev/null
    for d in overlay vfs; do
        buildah_d $d rm -a > /dev/null 2>&1
        buildah_d $d rmi -a -f > /dev/null 2>&1
        umount "$T/buildah-$d/overlay" 2> /dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export E2B_DATA_DIR=$T/data E2B_RUNTIME_DIR=$T/run HOME=$T/home
mkdir -p "$HOME"
. "$SRC_DIR/tests/e2e/lib-image.sh"

now() { date +%s.%N; }
secs() { printf '%.3f' "$(echo "$2 - $1" | bc)"; }
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
for tool in docker-registry skopeo busybox bc mke2fs; do
    command -v $tool > /dev/null || { echo "bench/build: no $tool (tools/deps.sh bench)"; exit 1; }
done

# the base image: busybox-static, pushed to a loopback registry
img_busybox "$T/busybox" 1 "$T/busybox.root" > /dev/null || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/reg"
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$T/reg" "$port" > "$T/reg.yml"
docker-registry serve "$T/reg.yml" > "$T/reg.log" 2>&1 &
REG_PID=$!
REG=127.0.0.1:$port
n=100
until curl -s -o /dev/null "http://$REG/v2/"; do
    n=$((n - 1)); [ $n -gt 0 ] || { echo "registry did not start"; cat "$T/reg.log"; exit 1; }
    sleep 0.1
done
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$T/busybox:1" "docker://$REG/bench/busybox:1" || exit 1

# the context: 2000 small files and one 50 MB file, RUN steps that write files
mkdir -p "$T/ctx/files"
i=0; while [ $i -lt 2000 ]; do echo "file $i" > "$T/ctx/files/f$i"; i=$((i + 1)); done
head -c 50000000 /dev/urandom > "$T/ctx/big.bin"
cat > "$T/ctx/Dockerfile" <<DF
FROM $REG/bench/busybox:1
ENV APP=/srv/app
WORKDIR /srv/app
COPY files ./files
COPY big.bin /big.bin
RUN i=0; while [ \$i -lt 200 ]; do echo \$i > files/run\$i; i=\$((i + 1)); done
RUN echo "user:x:1000:1000::/home/user:/bin/sh" >> /etc/passwd && mkdir -p /home/user && chown 1000 /home/user
DF

echo "(a) build FROM $REG/bench/busybox:1 (2000 files, 50 MB, 2 RUN steps), cold caches"
t0=$(now)
"$E2B" template build -q -n bench "$T/ctx" > /dev/null 2> "$T/e2b.log" || { echo "e2b build failed:"; tail -5 "$T/e2b.log"; exit 1; }
t1=$(now)
e2b_s=$(secs "$t0" "$t1")
echo "  e2b template build (rootfs.ext4 included): ${e2b_s}s"

if command -v buildah > /dev/null; then
    for d in overlay vfs; do
        t0=$(now)
        if buildah_d $d bud --tls-verify=false --isolation chroot -q -t bench "$T/ctx" > "$T/buildah-$d.log" 2>&1; then
            t1=$(now)
            b_s=$(secs "$t0" "$t1")
            printf '  buildah bud (%-7s chroot isolation): %ss   ratio e2b/buildah: %s (goal: 0.50 or less)\n' \
                "$d," "$b_s" "$(ratio "$e2b_s" "$b_s")"
        else
            echo "  buildah bud ($d): failed here:"; tail -3 "$T/buildah-$d.log"
            STATUS=1
        fi
    done
    echo "  (buildah stops at its image; e2b's time includes the ext4 image and the user account)"
else
    echo "  buildah bud: not installed (tools/deps.sh bench): no comparison"
    STATUS=1
fi

t0=$(now)
"$E2B" template build -q -n bench2 "$T/ctx" > /dev/null || exit 1
t1=$(now)
echo "  second e2b build (every step cached):    $(secs "$t0" "$t1")s"
t0=$(now)
"$E2B" template build -q --no-cache -n bench3 "$T/ctx" > /dev/null || exit 1
t1=$(now)
echo "  third e2b build (--no-cache, base cached): $(secs "$t0" "$t1")s"

# (b) the same tree both ways: the build's own root directory
echo "(b) root directory -> ext4 image"
echo "  note: lib/ext4 itself runs 'mke2fs -d' (e2fsprogs), so the ratio is e2b's overhead around it"
root=$(ls -d "$E2B_DATA_DIR"/templates/*/current/rootfs 2> /dev/null | head -n 1)
if [ -z "$root" ]; then
    # the store keeps only the image: rebuild the tree from the base and context
    root=$T/tree
    mkdir -p "$root" && tar -C "$T/busybox.root" -cf - . 2> /dev/null | tar -C "$root" -xf - 2> /dev/null
    cp -r "$T/ctx/files" "$T/ctx/big.bin" "$root/"
fi
size=$(du -sm "$root" | cut -f1)
files=$(find "$root" | wc -l)
# mke2fs gets the size and inode count e2b chose, so both write the same
# image; best of 3, order alternating and a sync before each, so writeback
# of one does not land on the other
"$E2B" __ext4 "$root" "$T/e2b.ext4" 2> "$T/ext4.log" || { cat "$T/ext4.log"; exit 1; }
img_mb=$(( $(stat -c %s "$T/e2b.ext4") / 1048576 ))
inodes=$(dumpe2fs -h "$T/e2b.ext4" 2> /dev/null | sed -n 's/^Inode count: *//p')
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
e_s= m_s= l_s=
run_e2b() {
    sync; t0=$(now)
    "$E2B" __ext4 "$root" "$T/e2b.ext4" 2> "$T/ext4.log" || { cat "$T/ext4.log"; exit 1; }
    t1=$(now)
    e_s=$(min "$e_s" "$(secs "$t0" "$t1")")
    l_s=$(min "$l_s" "$(sed -n 's/.* in \([0-9.]*\)s$/\1/p' "$T/ext4.log")")
}
run_mke2fs() {
    sync; t0=$(now)
    mke2fs -q -F -t ext4 -b 4096 -m 0 -N "$inodes" -d "$root" "$T/plain.ext4" "${img_mb}M" > /dev/null || exit 1
    t1=$(now)
    m_s=$(min "$m_s" "$(secs "$t0" "$t1")")
}
for round in 1 2 3; do
    rm -f "$T/e2b.ext4" "$T/plain.ext4"
    if [ $round = 2 ]; then run_mke2fs; run_e2b; else run_e2b; run_mke2fs; fi
done
echo "  tree: ${size} MB, ${files} entries; image ${img_mb} MiB, ${inodes} inodes"
echo "  e2b __ext4 (best of 3): ${e_s}s for the command, ${l_s}s in lib/ext4 (without process start)"
echo "  mke2fs -d (best of 3):   ${m_s}s"
echo "  ratio e2b/mke2fs: $(ratio "$l_s" "$m_s") for the step (goal: 1.00 or less), $(ratio "$e_s" "$m_s") for the command"
exit $STATUS
