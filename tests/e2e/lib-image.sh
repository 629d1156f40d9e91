# lib-image.sh - build OCI image layouts from directories with sh, tar, gzip
# and sha256sum only (no container tools); source after test-lib.sh.
#
#   oci_image LAYOUT ARCH DIR...        one image (a gzip layer per DIR, base first) into
#                                       LAYOUT's blobs; prints "digest size" of its manifest
#   oci_layout_from_dir DIR LAYOUT TAG [ARCH]
#                                       a layout whose index.json names one image TAG
#   oci_layout_multi LAYOUT TAG ARCH1 DIR1 ARCH2 DIR2 ...
#                                       TAG is an image index with one image per platform
#                                       (ARCH may be "arm64/v8" for a variant)
# Archives are reproducible: sorted names, uid/gid 0, mtime 0, gzip -n.

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
        tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -cf "$t.tar" . || return 1
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
