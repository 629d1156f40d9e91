# lib-image.sh - build OCI image layouts from directories with sh, tar, gzip
# and sha256sum only (no container tools); source after test-lib.sh.
#
#   oci_image LAYOUT ARCH DIR...        one image (a gzip layer per DIR, base first) into
#                                       LAYOUT's blobs; prints "digest size" of its manifest;
#                                       a DIR that is a file is a ready-made tar layer
#   oci_layout_from_dir DIR LAYOUT TAG [ARCH]
#                                       a layout whose index.json names one image TAG
#   oci_layout_multi LAYOUT TAG ARCH1 DIR1 ARCH2 DIR2 ...
#                                       TAG is an image index with one image per platform
#                                       (ARCH may be "arm64/v8" for a variant)
#   img_busybox LAYOUT TAG [DIR]      a busybox-static image: /bin/busybox, one symlink per
#                                       applet, /etc/passwd and /etc/group (root only); the
#                                       root is left in DIR when given
#   img_debian                          prints the directory of an OCI layout (tag bookworm)
#                                       of `debootstrap --variant=minbase bookworm`, made once
#                                       a day per arch and cached in $E2B_TEST_CACHE
#                                       (default /var/cache/e2b-tests)
#   img_archives LAYOUT:TAG OUT         OUT.oci.tar and OUT.docker.tar (skopeo copy)
#   registry_start NAME [HTPASSWD]      Debian's docker-registry on a free 127.0.0.1 port,
#                                       storage in $TRASH/NAME/storage; sets REG_NAME to
#                                       host:port; stopped at exit (needs test-lib.sh; call
#                                       it outside test bodies so REG_NAME stays set)
#   registry_push LAYOUT:TAG DEST [SKOPEO-ARGS]   skopeo copy to docker://DEST over http
# Archives are reproducible: sorted names, uid/gid 0 (OCI_KEEP_OWNER=1 keeps
# the files' owners), mtime 0, gzip -n.

_oci_init() { # layout
    mkdir -p "$1/blobs/sha256" &&
    { [ -f "$1/oci-layout" ] || printf '{"imageLayoutVersion":"1.0.0"}' > "$1/oci-layout"; }
}

_oci_put() { # layout file: move file into blobs; prints "digest size"
    local d s
    d=$(sha256sum < "$2" | cut -d' ' -f1) && s=$(wc -c < "$2") &&
    mv "$2" "$1/blobs/sha256/$d" && echo "sha256:$d $s"
}

oci_image() { # layout arch dir...
    local layout=$1 arch=$2 os=linux variant= layers= diffs= t ds dd
    shift 2
    _oci_init "$layout" || return 1
    case $arch in */*) variant=${arch#*/}; arch=${arch%%/*} ;; esac
    t=$layout/.tmp.$$
    for dir in "$@"; do
        if [ -f "$dir" ]; then # a tar made by the caller (hostile names, say), used as is
            cp "$dir" "$t.tar" || return 1
        elif [ -n "${OCI_KEEP_OWNER:-}" ]; then
            tar --sort=name --numeric-owner --xattrs --mtime=@0 -C "$dir" -cf "$t.tar" . || return 1
        else
            tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -cf "$t.tar" . || return 1
        fi
        dd=$(sha256sum < "$t.tar" | cut -d' ' -f1)
        gzip -n -c "$t.tar" > "$t.gz" && rm -f "$t.tar" || return 1
        set -- $(_oci_put "$layout" "$t.gz") "$@"
        layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$1\",\"size\":$2}"
        diffs="$diffs${diffs:+,}\"sha256:$dd\""
        shift 2
    done
    printf '{"architecture":"%s","os":"%s"%s,"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
        "$arch" "$os" "${variant:+,\"variant\":\"$variant\"}" "$diffs" > "$t.cfg"
    ds=$(_oci_put "$layout" "$t.cfg") || return 1
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
        "${ds% *}" "${ds#* }" "$layers" > "$t.man"
    _oci_put "$layout" "$t.man"
}

_oci_platform() { # arch[/variant]
    local a=${1%%/*} v=
    case $1 in */*) v=${1#*/} ;; esac
    printf '{"architecture":"%s","os":"linux"%s}' "$a" "${v:+,\"variant\":\"$v\"}"
}

_oci_index_json() { # layout tag mediatype digest size [platform-json]
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"%s","digest":"%s","size":%s%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
        "$3" "$4" "$5" "${6:+,\"platform\":$6}" "$2" > "$1/index.json"
}

oci_layout_from_dir() { # dir layout tag [arch]
    local m
    m=$(oci_image "$2" "${4:-amd64}" "$1") || return 1
    _oci_index_json "$2" "$3" application/vnd.oci.image.manifest.v1+json "${m% *}" "${m#* }" \
        "$(_oci_platform "${4:-amd64}")"
}

oci_layout_multi() { # layout tag arch1 dir1 [arch2 dir2 ...]
    local layout=$1 tag=$2 list= m t
    shift 2
    while [ $# -ge 2 ]; do
        m=$(oci_image "$layout" "$1" "$2") || return 1
        list="$list${list:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"${m% *}\",\"size\":${m#* },\"platform\":$(_oci_platform "$1")}"
        shift 2
    done
    t=$layout/.tmp.$$.idx
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$list" > "$t"
    m=$(_oci_put "$layout" "$t") || return 1
    _oci_index_json "$layout" "$tag" application/vnd.oci.image.index.v1+json "${m% *}" "${m#* }"
}

img_busybox() { # layout tag [dir]
    local root=${3:-$1.root} bb a
    bb=$(command -v busybox) || { echo "img_busybox: no busybox" >&2; return 1; }
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" &&
    chmod 1777 "$root/tmp" &&
    cp "$bb" "$root/bin/busybox" || return 1
    for a in $("$bb" --list); do
        [ "$a" = busybox ] || [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a" || return 1
    done
    echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd" &&
    echo "root:x:0:" > "$root/etc/group" &&
    oci_layout_from_dir "$root" "$1" "$2" &&
    { [ -n "${3:-}" ] || rm -rf "$root"; }
}

# debootstrap takes minutes, so its image is shared by every test of the day;
# a lock makes concurrent tests wait for one debootstrap, and the layout only
# appears (rename) once complete.
img_debian() {
    local cache=${E2B_TEST_CACHE:-/var/cache/e2b-tests} arch key dir tmp
    arch=$(dpkg --print-architecture) || return 1
    key=debian-bookworm-minbase-$arch-$(date -u +%Y%m%d)
    dir=$cache/$key
    mkdir -p "$cache" || return 1
    if [ ! -f "$dir/index.json" ]; then
        (
            flock 9 || exit 1
            [ -f "$dir/index.json" ] && exit 0
            tmp=$cache/.tmp-$key-$$
            rm -rf "$tmp" && mkdir -p "$tmp" || exit 1
            trap 'rm -rf "$tmp"' EXIT
            debootstrap --variant=minbase bookworm "$tmp/root" http://deb.debian.org/debian \
                > "$tmp/log" 2>&1 || { tail -n 20 "$tmp/log" >&2; exit 1; }
            # no device nodes or caches in an image layer (the runtime gives /dev)
            rm -rf "$tmp/root/dev/"* "$tmp/root/var/cache/apt/archives/"*.deb \
                "$tmp/root/var/lib/apt/lists/"*_* "$tmp/root/debootstrap" || exit 1
            OCI_KEEP_OWNER=1 oci_layout_from_dir "$tmp/root" "$tmp/oci" bookworm "$arch" || exit 1
            mv "$tmp/oci" "$dir" || exit 1
            # older days' images of this key are ours to drop
            for old in "$cache"/debian-bookworm-minbase-"$arch"-*; do
                [ "$old" = "$dir" ] || rm -rf "$old"
            done
        ) 9> "$cache/.lock-debian" || return 1
    fi
    echo "$dir"
}

img_archives() { # layout:tag out
    skopeo --insecure-policy copy -q "oci:$1" "oci-archive:$2.oci.tar" &&
    skopeo --insecure-policy copy -q "oci:$1" "docker-archive:$2.docker.tar:e2b-test/${1##*:}:latest"
}

registry_start() { # name [htpasswd-file]
    local name=$1 port
    port=$(free_port)
    mkdir -p "$TRASH/$name/storage"
    {
        printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n'
        printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$TRASH/$name/storage"
        printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
        [ -z "${2:-}" ] || printf 'auth:\n  htpasswd:\n    realm: test\n    path: %s\n' "$2"
    } > "$TRASH/$name/config.yml"
    docker-registry serve "$TRASH/$name/config.yml" > "$TRASH/$name/log" 2>&1 &
    test_atexit "kill $!"
    eval "REG_$name=127.0.0.1:$port"
    # /v2/ answers 200, or 401 with auth: either way it is up
    wait_for 100 sh -c "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/v2/ | grep -q '^[24]'"
}

registry_push() { # layout:tag dest [skopeo args]
    local src=$1 dst=$2
    shift 2
    skopeo --insecure-policy copy -q --dest-tls-verify=false "$@" "oci:$src" "docker://$dst"
}
