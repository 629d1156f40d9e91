#!/bin/sh
# criu.sh - make sure the `criu` on PATH can checkpoint on this kernel, which
# the ns runtime's snapshots and `pause --to-disk` need (lib/checkpoint-criu.h).
#
# Debian 12's criu (3.17) cannot run on Linux 6.13 and later (it does not
# know the kernel's [vvar_vclock] mapping) and CRIU before 4.2 cannot dump a
# TCP socket on Linux 6.16 and later (SO_PASSCRED is refused there), so on
# such a kernel this installs Debian testing's criu, unpacked with the
# libraries it was built against (its own glibc among them, run through its
# own ld.so) under /usr/local/lib/e2b-criu, and /usr/local/sbin/criu to run
# it. Nothing of the system's packages changes. Idempotent; quiet when the
# criu there is good enough. Needs root (tools/deps.sh runs it).
set -eu
prefix=${E2B_CRIU_PREFIX:-/usr/local/lib/e2b-criu}
suite=${E2B_CRIU_SUITE:-testing}
wrapper=/usr/local/sbin/criu

kernel=$(uname -r | sed 's/[^0-9.].*//')
# The CRIU this kernel needs.
need=3.17
dpkg --compare-versions "$kernel" ge 6.13 && need=4.1
dpkg --compare-versions "$kernel" ge 6.16 && need=4.2

good_enough() {
    v=$(criu --version 2>/dev/null | sed -n 's/^Version: //p')
    [ -n "$v" ] && dpkg --compare-versions "$v" ge "$need" && criu check >/dev/null 2>&1
}
good_enough && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "criu.sh: Linux $kernel needs CRIU $need or newer (run as root to install it)" >&2
    exit 1
fi

echo "criu.sh: Linux $kernel needs CRIU $need or newer: installing Debian $suite's into $prefix" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs"
echo "deb http://deb.debian.org/debian $suite main" > "$tmp/sources.list"
# apt on its own lists: the system's sources and status stay as they are
set -- -o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache" -o Dir::State::status=/dev/null \
    -o APT::Sandbox::User=root -qq
apt-get "$@" update
# criu and everything it needs, down to libc (virtual packages left out)
pkgs=$(apt-cache "$@" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances criu | grep -v '^ ' | grep -v '^<' | sort -u)
(cd "$tmp/debs" && apt-get "$@" download $pkgs)
rm -rf "$prefix.new"
mkdir -p "$prefix.new"
for d in "$tmp"/debs/*.deb; do dpkg-deb -x "$d" "$prefix.new"; done
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
ld=$(ls "$prefix.new/usr/lib/$multiarch"/ld-linux*.so.* | head -n 1)
[ -x "$prefix.new/usr/sbin/criu" ] && [ -n "$ld" ] || { echo "criu.sh: the packages had no criu or ld.so" >&2; exit 1; }
rm -rf "$prefix"
mv "$prefix.new" "$prefix"
ld=$prefix/usr/lib/$multiarch/$(basename "$ld")
mkdir -p "$(dirname "$wrapper")"
cat > "$wrapper.tmp" <<EOF
#!/bin/sh
# CRIU from Debian $suite with its own libraries, installed by e2b's tools/criu.sh:
# Linux $kernel needs CRIU $need or newer.
exec "$ld" --library-path "$prefix/usr/lib/$multiarch" "$prefix/usr/sbin/criu" "\$@"
EOF
chmod 755 "$wrapper.tmp"
mv "$wrapper.tmp" "$wrapper"
hash -r 2>/dev/null || true
good_enough || { echo "criu.sh: $wrapper does not pass 'criu check' either:" >&2; criu check >&2; exit 1; }
echo "criu.sh: $(criu --version | head -n 1) at $wrapper" >&2
