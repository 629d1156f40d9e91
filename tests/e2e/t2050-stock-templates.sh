#!/bin/sh
# The stock templates in templates/ and `template init`'s Dockerfile: both
# parse, their apt-get steps ask for the network (RUN steps have none by
# default), templates/busybox builds from a busybox image in a loopback
# registry (BASE build arg) and starts; `sandbox create` with no template
# says how to build the default one. (templates/base needs Debian's mirrors,
# so only its parse is tested here: no internet in tests.)
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-image.sh"
. "$TEST_DIR/lib-sandbox.sh"

for tool in docker-registry skopeo busybox python3; do
    command -v $tool >/dev/null || { echo "1..0 # SKIP no $tool"; exit 0; }
done
unset DOCKER_CONFIG REGISTRY_AUTH_FILE
TPL=$SRC_DIR/templates

# apt-get steps of a --dry-run --json: each must carry --network=host
apt_steps_networked() {
    python3 - "$1" <<-'PY'
	import json, sys
	d = json.load(open(sys.argv[1]))
	runs = [i for s in d["stages"] for i in s["instructions"] if i["instruction"] == "RUN"]
	apt = [r for r in runs if "apt-get" in " ".join(r["args"])]
	assert apt, "no apt-get step"
	for r in apt:
	    assert {"name": "network", "value": "host"} in r["flags"], r
	PY
}

test_expect_success 'templates/base parses; its apt-get step asks for the network' '
    e2b template build --dry-run --json "$TPL/base" > base.json &&
    apt_steps_networked base.json &&
    grep -q "\"debian:12\"" base.json
'

test_expect_success 'templates/code-interpreter parses; its apt-get step asks for the network' '
    e2b template build --dry-run --json --build-arg BASE=oci:/nonexistent:bookworm \
        "$TPL/code-interpreter" > ci.json &&
    apt_steps_networked ci.json && grep -q "python3-ipykernel" ci.json &&
    grep -q "\"oci:/nonexistent:bookworm\"" ci.json
'

test_expect_success 'templates/busybox parses; BASE picks the image' '
    e2b template build --dry-run --json --build-arg BASE=example.invalid/bb:1 "$TPL/busybox" > bb.json &&
    grep -q "\"example.invalid/bb:1\"" bb.json
'

test_expect_success 'the template init Dockerfile parses; its apt-get step asks for the network' '
    e2b template init -p init -n mine && e2b template build --dry-run --json -p init > init.json &&
    apt_steps_networked init.json
'

registry_start reg
test_expect_success 'templates/busybox builds from a loopback registry image and starts' '
    img_busybox bb 1 > /dev/null 2>&1 && registry_push bb:1 "$REG_reg/test/busybox:1" &&
    e2b template build -n busybox --build-arg BASE=$REG_reg/test/busybox:1 "$TPL/busybox" > id 2>err &&
    sbx_create busybox &&
    e2b sandbox exec $SBX -- sh -c "id -un; pwd; id user" > out &&
    e2b sandbox exec -u root $SBX -- cat /etc/sudoers.d/user-nopasswd >> out &&
    test_grep "^user$" out && test_grep "^user ALL=(ALL:ALL) NOPASSWD: ALL$" out &&
    test_grep "^uid=1000(user)" out && test_grep "^/$" out &&
    e2b sandbox kill $SBX
'

test_expect_success 'sandbox create with no template, base not built: says how to build it' '
    test_expect_code 1 e2b sandbox create -d 2>err &&
    test_grep "template .base. not found" err &&
    test_grep "e2b template build -n base templates/base" err
'

test_done
