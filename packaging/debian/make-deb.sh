#!/bin/sh
# make-deb.sh ROOT VERSION OUT.deb [SONAME...] - turn a staged `make install`
# tree into a Debian package: DEBIAN/control with Depends worked out by
# dpkg-shlibdeps from the libraries the binary really links (plus what it
# runs), and the maintainer scripts. Each SONAME is a library e2b opens with
# dlopen (lib/dl.h), which dpkg-shlibdeps cannot see: the package that ships
# it here is added, at least at the version installed here.
set -eu
root=$1 version=$2 out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps wants a source tree: a minimal one, the binary in its package dir.
mkdir -p "$work/debian/e2b/usr/bin"
printf 'Source: e2b\n\nPackage: e2b\nArchitecture: any\n' > "$work/debian/control"
cp "$root/usr/bin/e2b" "$work/debian/e2b/usr/bin/e2b"
shlibs=$(cd "$work" && dpkg-shlibdeps -O debian/e2b/usr/bin/e2b | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "make-deb.sh: dpkg-shlibdeps found no libraries" >&2; exit 1; }
for so in "$@"; do
    pkg=$(dpkg -S "*/$so" 2>/dev/null | sed -n '1s/:.*//p')
    [ -n "$pkg" ] || { echo "make-deb.sh: no installed package ships $so" >&2; exit 1; }
    ver=$(dpkg-query -W -f '${Version}' "$pkg" | sed 's/-[^-]*$//')
    shlibs="$shlibs, $pkg (>= $ver)"
done
mkdir -p "$root/DEBIAN"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$shlibs/" \
    "$here/control.in" > "$root/DEBIAN/control"
install -m 0755 "$here/postinst" "$here/postrm" "$root/DEBIAN/"
dpkg-deb --root-owner-group --build "$root" "$out"
