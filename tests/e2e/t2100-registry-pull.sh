#!/bin/sh
# Pulling images from a real registry (Debian's docker-registry on loopback),
# filled with skopeo from OCI layouts built by lib-image.sh: by tag, by
# digest, from an index with two platforms, cache reuse, resumed downloads,
# a corrupt blob, 404s, htpasswd Basic auth, Bearer tokens, a 500 and a
# cut connection (registry-fault.py). The pulls run in tests/unit/t-registry.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-image.sh"

T=$BUILD_DIR/tests/unit/t-registry
for tool in docker-registry skopeo htpasswd; do
    command -v $tool >/dev/null || { echo "1..0 # SKIP no $tool"; exit 0; }
done
[ -x "$T" ] || { echo "1..0 # SKIP no $T (make B=... $T)"; exit 0; }
BUSYBOX=$(command -v busybox) || { echo "1..0 # SKIP no busybox"; exit 0; }
unset DOCKER_CONFIG REGISTRY_AUTH_FILE XDG_RUNTIME_DIR

fault_start() { # name mode [args]: sets FAULT_<name>
    local name=$1
    shift
    python3 "$TEST_DIR/registry-fault.py" "$TRASH/fault-$name.port" "$@" > "$TRASH/fault-$name.log" 2>&1 &
    test_atexit "kill $!"
    wait_for 100 test -s "$TRASH/fault-$name.port" || return 1
    eval "FAULT_$name=127.0.0.1:$(cat "$TRASH/fault-$name.port")"
}

test_expect_success 'build OCI layouts of a busybox root' '
    mkdir -p root/bin root/etc extra/etc arm/bin &&
    cp "$BUSYBOX" root/bin/busybox && ln -s busybox root/bin/sh &&
    echo "root:x:0:0:root:/root:/bin/sh" > root/etc/passwd &&
    echo extra > extra/etc/extra.txt && echo arm64 > arm/bin/marker &&
    oci_image busybox amd64 root extra > busybox.desc &&
    _oci_index_json busybox 1 application/vnd.oci.image.manifest.v1+json \
        $(cat busybox.desc) "$(_oci_platform amd64)" &&
    oci_layout_multi multi 1 amd64 extra arm64/v8 arm &&
    skopeo inspect --raw oci:busybox:1 | grep -q tar+gzip
'

# Servers start here, not in a test body (a subshell), so their addresses stay known.
registry_start open
htpasswd -Bbc "$TRASH/htpasswd" user s3cret 2>/dev/null
registry_start auth "$TRASH/htpasswd"
REG_open=${REG_open:-} REG_auth=${REG_auth:-}

test_expect_success 'registries (open and htpasswd) are up; push with skopeo' '
    test -n "$REG_open" && test -n "$REG_auth" &&
    registry_push busybox:1 "$REG_open/test/busybox:1" &&
    registry_push multi:1 "$REG_open/test/multi:1" --all &&
    registry_push busybox:1 "$REG_auth/test/busybox:1" --dest-creds user:s3cret &&
    curl -sf "http://$REG_open/v2/test/busybox/tags/list" | grep -q "\"1\""
'
# the registry-side digests, for the pull tests to compare with
export E2B_TEST_REGISTRY=$REG_open E2B_TEST_REGISTRY_ROOT=$TRASH/open/storage
export E2B_TEST_AUTH_REGISTRY=$REG_auth E2B_TEST_AUTH=user:s3cret
E2B_TEST_DIGEST=sha256:$(skopeo inspect --tls-verify=false --raw "docker://$REG_open/test/busybox:1" | sha256sum | cut -d" " -f1)
idx=$(skopeo inspect --tls-verify=false --raw "docker://$REG_open/test/multi:1")
E2B_TEST_MULTI_AMD64=$(echo "$idx" | python3 -c 'import json,sys; print([m["digest"] for m in json.load(sys.stdin)["manifests"] if m["platform"]["architecture"]=="amd64"][0])')
E2B_TEST_MULTI_ARM64=$(echo "$idx" | python3 -c 'import json,sys; print([m["digest"] for m in json.load(sys.stdin)["manifests"] if m["platform"]["architecture"]=="arm64"][0])')
export E2B_TEST_DIGEST E2B_TEST_MULTI_AMD64 E2B_TEST_MULTI_ARM64

fault_start 500 500
fault_start token token "$REG_open" user:s3cret
fault_start cut cut "$REG_open"
export E2B_TEST_FAULT_500=${FAULT_500:-} E2B_TEST_TOKEN_REGISTRY=${FAULT_token:-}
export E2B_TEST_CUT_REGISTRY=${FAULT_cut:-}

run() { "$T" "$1" > "$TRASH/$1.tap" 2>&1; rc=$?; cat "$TRASH/$1.tap"; [ $rc = 0 ] && ! grep -q "^not ok" "$TRASH/$1.tap"; }

test_expect_success 'pull by tag: manifest, config and layers verified into the cache; a second pull downloads no blob' 'run pull'
test_expect_success 'pull by digest and by repo:tag@digest' 'run digest'
test_expect_success 'image index: linux/amd64 by default, --platform linux/arm64[/v8], unknown platform listed' 'run multi'
test_expect_success 'a partial blob is resumed with Range; a corrupt partial fails the digest check and is removed' 'run resume'
test_expect_success 'a connection cut mid-blob keeps the bytes; later pulls resume' 'run cut'
test_expect_success 'a corrupt blob in the registry: clear error naming it, nothing left in the cache' 'run mismatch'
test_expect_success '404: unknown repository and unknown tag' 'run notfound'
test_expect_success 'htpasswd registry: no credentials, refused ones, ~/.docker/config.json, $DOCKER_CONFIG' 'run auth'
test_expect_success 'Bearer token realm: anonymous refused, Basic to the token server, blob redirects followed' 'run token'
test_expect_success '500 from the registry and a dead port are clear errors' 'run fault && run network'

test_expect_success 'the default cache is e2b_data_dir()/cache/blobs' '
    run datadir && test -n "$(ls "$E2B_DATA_DIR/cache/blobs/sha256")"
'

test_done
