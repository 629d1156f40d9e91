#!/bin/sh
# bench/build: time of `e2b template build` for one Dockerfile against
# `buildah bud` (when installed and able to run here), and of the root tree
# to ext4 step against plain `mke2fs -d` on the same tree.
set -u
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${E2B_BUILD_DIR:-$SRC_DIR/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$SRC_DIR/$BUILD_DIR ;; esac
E2B=$BUILD_DIR/e2b
T=$(mktemp -d "${TMPDIR:-/tmp}/e2b-bench-build.XXXXXX")
trap 'rm -rf "$T"' EXIT
export E2B_DATA_DIR=$T/data

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

# a context: dash and its libraries plus 2000 small files and one 50 MB file
mkdir -p "$T/ctx/root/bin" "$T/ctx/root/etc" "$T/ctx/files"
cp /bin/dash "$T/ctx/root/bin/sh"
for l in $(ldd /bin/dash | grep -o "/[^ ]*"); do mkdir -p "$T/ctx/root$(dirname $l)"; cp "$l" "$T/ctx/root$l"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$T/ctx/root/etc/passwd"
echo "root:x:0:" > "$T/ctx/root/etc/group"
i=0; while [ $i -lt 2000 ]; do echo "file $i" > "$T/ctx/files/f$i"; i=$((i + 1)); done
head -c 50000000 /dev/urandom > "$T/ctx/big.bin"
cat > "$T/ctx/Dockerfile" <<'DF'
FROM scratch
COPY root/ /
COPY files /files
COPY big.bin /big.bin
RUN i=0; while [ $i -lt 200 ]; do echo $i > /files/run$i; i=$((i + 1)); done
DF

t0=$(now)
"$E2B" template build -q -n bench "$T/ctx" > /dev/null || { echo "e2b build failed"; exit 1; }
t1=$(now)
e2b_s=$(secs $t0 $t1)
echo "e2b template build:   ${e2b_s}s"

if command -v buildah > /dev/null; then
    t0=$(now)
    if buildah --storage-driver vfs --root "$T/buildah" --runroot "$T/buildah-run" bud \
        --isolation chroot -q -t bench "$T/ctx" > "$T/buildah.log" 2>&1; then
        t1=$(now)
        b_s=$(secs $t0 $t1)
        echo "buildah bud (vfs, chroot): ${b_s}s"
        echo "ratio e2b/buildah: $(echo "scale=2; $e2b_s / $b_s" | bc)"
    else
        echo "buildah bud: installed but failed here:"; tail -3 "$T/buildah.log"
    fi
    buildah --storage-driver vfs --root "$T/buildah" --runroot "$T/buildah-run" rm -a > /dev/null 2>&1
    rm -rf "$T/buildah" 2> /dev/null
else
    echo "buildah bud: not installed (apt-get install buildah), no comparison"
fi

# root tree -> ext4: e2b's step (rootfs.ext4 of the build) vs mke2fs -d
root=$(ls -d "$E2B_DATA_DIR"/templates/*/current/rootfs)
size=$(du -sm "$root" | cut -f1)
t0=$(now)
mke2fs -q -t ext4 -d "$root" "$T/plain.ext4" $((size * 2 + 16))M || exit 1
t1=$(now)
echo "mke2fs -d (${size} MB tree): $(secs $t0 $t1)s"
t0=$(now)
"$E2B" template build -q -n bench2 "$T/ctx" > /dev/null
t1=$(now)
echo "second e2b build (every step cached): $(secs $t0 $t1)s"
t0=$(now)
"$E2B" template build -q --no-cache -n bench3 "$T/ctx" > /dev/null
t1=$(now)
echo "third e2b build (--no-cache): $(secs $t0 $t1)s"
