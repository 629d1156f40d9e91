#!/bin/sh
# Plain HTTP only for loopback registries and those named with
# --insecure-registry: a registry on a non-loopback address (in a network
# namespace this test makes) that speaks plain HTTP is
# refused without the flag (e2b speaks https to it and says how to allow it)
# and used with it.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-image.sh"

test_have_root || { echo "1..0 # SKIP network namespaces need root"; exit 0; }
for tool in docker-registry skopeo busybox ip; do
    command -v $tool >/dev/null || { echo "1..0 # SKIP no $tool"; exit 0; }
done
unset DOCKER_CONFIG REGISTRY_AUTH_FILE

NS=e2b-t2110-$$
ADDR=10.213.$(( $$ % 250 + 1 )).1
REG=$ADDR:5000
netns_new $NS || { echo "Bail out! cannot make a network namespace"; exit 1; }
inns() { netns_exec $NS "$@"; }
# a non-loopback address (10.x) on the namespace's own lo: no host route reaches it
inns ip link set lo up && inns ip addr add $ADDR/32 dev lo || { echo "Bail out! cannot set up $NS"; exit 1; }

mkdir -p reg/storage
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$TRASH/reg/storage" "$REG" > reg/config.yml
# exec: $! must be the registry itself (a backgrounded shell function is a
# subshell, and killing that left the registry running)
(exec nsenter -t "$(netns_pid $NS)" -n -- docker-registry serve reg/config.yml) > reg/log 2>&1 &
test_atexit "kill $!"
wait_for 100 inns sh -c "curl -s -o /dev/null -w '%{http_code}' http://$REG/v2/ | grep -q '^200'"

mkdir ctx
printf "FROM %s/test/bb:1\nRUN echo pulled > /pulled\n" "$REG" > ctx/Dockerfile

test_expect_success 'a busybox image in the plain-HTTP registry on a non-loopback address' '
    img_busybox bb 1 > /dev/null 2>&1 &&
    inns skopeo --insecure-policy copy -q --dest-tls-verify=false oci:bb:1 "docker://$REG/test/bb:1"
'

test_expect_success 'without --insecure-registry: refused, with a hint; nothing built' '
    test_expect_code 1 inns e2b template build -n tins ctx 2>err &&
    test_grep "^e2b: .*$REG/test/bb:1" err && test_grep "https" err &&
    test_grep "insecure-registry" err &&
    test -z "$(e2b template list --json | grep tins)"
'

test_expect_success 'with --insecure-registry HOST:PORT (or HOST): pulled over plain HTTP' '
    inns e2b template build -n tins --insecure-registry "$REG" ctx > id 2>err &&
    test_grep "blob 2/2 [0-9a-f]* pulled" err &&
    debugfs -R "cat /pulled" "$E2B_DATA_DIR/templates/$(cat id)/current/rootfs.ext4" 2>/dev/null | grep -qx pulled &&
    rm -rf "$E2B_DATA_DIR/cache/blobs" &&
    inns e2b template build -n tins2 --no-cache --insecure-registry "$ADDR" ctx > /dev/null 2>err
'

test_done
