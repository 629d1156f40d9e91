#!/bin/sh
# The local template store: a rebuild or `template delete` does not pull the
# files out from under running sandboxes (old builds stay until no sandbox
# uses them, then a later store operation collects them); `template delete`
# and `template init`; a build killed with kill -9 mid-step leaves the old
# template, no processes and no mounts; --disk-size gives real free space.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-image.sh"
. "$TEST_DIR/lib-sandbox.sh"

for tool in busybox dumpe2fs; do
    command -v $tool >/dev/null || { echo "1..0 # SKIP no $tool"; exit 0; }
done

tpl_id() { e2b template list --json | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if sys.argv[1] in t.get("aliases", []): print(t["templateID"])' "$1"; }
builds() { ls "$E2B_DATA_DIR/templates/$1/builds" 2>/dev/null | wc -l; }
staging() { ls -A "$E2B_DATA_DIR/templates/.staging" 2>/dev/null; }
# collected: after a store operation (list), the deleted and old builds are gone
collected() { e2b template list > /dev/null 2>&1 && test -z "$(staging)"; }

# v1 and v2 of one template: many files, so that a sandbox from v1 reads
# some only after the rebuild (overlayfs looks them up in the lower tree then)
mkver() { # ctx version
    sbx_tiny_template_ctx "$1" &&
    for i in 1 2 3 4 5 6 7 8; do echo "$2-$i" > "$1/root/f$i"; done &&
    echo "$2" > "$1/root/only-$2"
}
sbx_tiny_template_ctx() {
    mkdir -p "$1/root/bin" "$1/root/etc" && cp /bin/dash "$1/root/bin/sh" &&
    for l in $(ldd /bin/dash | grep -o "/[^ ]*"); do
        mkdir -p "$1/root$(dirname $l)" && cp "$l" "$1/root$l" || return 1
    done &&
    printf "root:x:0:0:root:/root:/bin/sh\n" > "$1/root/etc/passwd" &&
    printf "root:x:0:\n" > "$1/root/etc/group" &&
    printf "FROM scratch\nCOPY root/ /\n" > "$1/e2b.Dockerfile"
}
mkver v1 v1 && mkver v2 v2
rd() { e2b sandbox exec "$1" -- sh -c "read x < $2 && echo \$x"; }

test_expect_success 'a sandbox from v1' '
    e2b template build -n tv -p v1 > id 2>/dev/null && sbx_create tv && echo $SBX > s1 &&
    test "$(rd $SBX /f1)" = v1-1
'

test_expect_success 'a rebuild keeps v1 for its sandbox: files it never read still read v1' '
    e2b template build -n tv -p v2 > id2 2>/dev/null && test "$(cat id2)" = "$(cat id)" &&
    test "$(builds $(cat id))" = 2 &&
    test "$(rd $(cat s1) /f2)" = v1-2 && test "$(rd $(cat s1) /only-v1)" = v1 &&
    sbx_create tv && echo $SBX > s2 && test "$(rd $SBX /f2)" = v2-2
'

test_expect_success 'template delete keeps both builds while their sandboxes run' '
    e2b template delete -y tv 2>err && test_grep "Deleted template tv" err &&
    test -z "$(tpl_id tv)" && test_must_fail e2b sandbox create -d tv 2>err &&
    test_grep "template .tv. not found" err &&
    test "$(rd $(cat s1) /f3)" = v1-3 && test "$(rd $(cat s2) /f3)" = v2-3 &&
    test "$(rd $(cat s2) /only-v2)" = v2 &&
    staging | grep -q "^deleted-$(cat id)-"
'

test_expect_success 'the builds are collected once their sandboxes are gone' '
    e2b sandbox kill $(cat s1) && sbx_gone $(cat s1) &&
    test "$(rd $(cat s2) /f4)" = v2-4 && ! collected &&
    e2b sandbox kill $(cat s2) && sbx_gone $(cat s2) &&
    wait_for 50 collected
'

test_expect_success 'a rebuild with no sandbox running drops the old build at once' '
    e2b template build -n tw -p v1 > idw 2>/dev/null && e2b template build -n tw -p v2 > /dev/null 2>&1 &&
    test "$(builds $(cat idw))" = 1 && test -z "$(staging)"
'

test_expect_success 'template delete: unknown name, and deleting several' '
    test_expect_code 1 e2b template delete -y nosuch 2>err && test_grep "template .nosuch. not found" err &&
    e2b template build -n tx -p v1 > /dev/null 2>&1 &&
    e2b template delete -y tw tx 2>err && test -z "$(tpl_id tw)" && test -z "$(tpl_id tx)" &&
    test -z "$(staging)" && test -z "$(ls "$E2B_DATA_DIR/templates")"
'

test_expect_success 'template init writes e2b.Dockerfile and e2b.toml; refuses to overwrite' '
    e2b template init -p newt -n my-tpl 2>err &&
    test_grep "^FROM " newt/e2b.Dockerfile && test_grep "^template_name = \"my-tpl\"$" newt/e2b.toml &&
    test_grep "^dockerfile = \"e2b.Dockerfile\"$" newt/e2b.toml &&
    cp newt/e2b.toml toml.before && test_expect_code 1 e2b template init -p newt 2>err &&
    test_grep "exists (use --force" err && test_cmp toml.before newt/e2b.toml &&
    e2b template init -p newt -n other --force && test_grep "other" newt/e2b.toml &&
    test_expect_code 2 e2b template init -p bad -n "Bad/Name" 2>err && test_grep "invalid template name" err &&
    test ! -e bad
'

test_expect_success 'the init Dockerfile parses, and its apt-get step asks for the network' '
    e2b template build --dry-run --json -p newt > dry &&
    python3 - dry <<-PY
	import json, sys
	d = json.load(open(sys.argv[1]))
	runs = [i for s in d["stages"] for i in s["instructions"] if i["instruction"] == "RUN"]
	assert runs, d
	for r in runs:
	    if "apt-get" in " ".join(r["args"]):
	        assert {"name": "network", "value": "host"} in r["flags"], r
	PY
'

# --- a build killed with kill -9 in the middle of a RUN step -------------

img_busybox bb 1 > /dev/null 2>&1
SLEEP=6$$
mkdir -p slow && cat > slow/Dockerfile <<DF
FROM oci:$TRASH/bb:1
RUN echo v1 > /version
DF

test_expect_success 'kill -9 of a build mid-step: old version, no processes, no mounts, no cgroup' '
    e2b template build -n tslow --memory-mb 256 slow > ids 2>/dev/null &&
    link=$(readlink "$E2B_DATA_DIR/templates/$(cat ids)/current") &&
    printf "FROM oci:%s\nRUN echo v2 > /version\nRUN echo step-started; sleep %s\n" "$TRASH/bb:1" $SLEEP > slow/Dockerfile &&
    { e2b template build -n tslow --memory-mb 256 slow > /dev/null 2> kill.err & echo $! > bpid; } &&
    test_atexit "kill -9 $(cat bpid)" &&
    wait_for 300 pgrep -f "^sleep $SLEEP\$" && test_grep step-started kill.err &&
    { grep -l "$TRASH" /proc/[0-9]*/mountinfo 2>/dev/null || true; } > with-mounts && test -s with-mounts &&
    kill -9 $(cat bpid) &&
    wait_for 100 sh -c "! pgrep -f \"^sleep $SLEEP\$\"" &&
    wait_for 100 sh -c "! grep -l \"$TRASH\" /proc/[0-9]*/mountinfo 2>/dev/null | grep -q ." &&
    test "$(readlink "$E2B_DATA_DIR/templates/$(cat ids)/current")" = "$link" &&
    test -n "$(ls /sys/fs/cgroup/*/e2b/ 2>/dev/null | grep "^build-$(cat bpid)-")" &&
    sbx_create tslow && test "$(e2b sandbox exec $SBX -- cat /version)" = v1 &&
    e2b sandbox kill $SBX
'

test_expect_success 'the next build cleans what the killed one left (staging, layers, cgroups)' '
    test -n "$(staging)" &&
    printf "FROM oci:%s\nRUN echo v3 > /version\n" "$TRASH/bb:1" > slow/Dockerfile &&
    e2b template build -n tslow slow > /dev/null 2>&1 &&
    test -z "$(staging)" &&
    test -z "$(ls "$E2B_DATA_DIR/cache/build/layers" | grep "\.tmp-")" &&
    test -z "$(ls -a "$E2B_DATA_DIR/cache/roots" 2>/dev/null | grep "^\.tmp-")" &&
    test -z "$(ls /sys/fs/cgroup/*/e2b/ /sys/fs/cgroup/e2b/ 2>/dev/null | grep "^build-$(cat bpid)-")"
'

# --- --disk-size ----------------------------------------------------------

free_mb() { # template id: free space of its rootfs.ext4 in MiB
    dumpe2fs -h "$E2B_DATA_DIR/templates/$1/current/rootfs.ext4" 2>/dev/null |
        awk -F: '/^Free blocks/ {f=$2} /^Block size/ {b=$2} END {print int(f * b / 1048576)}'
}

test_expect_success '--disk-size: that much free space in the image, recorded in diskSizeMB' '
    e2b template build -n td0 -p v1 > id0 2>/dev/null &&
    e2b template build -n td -p v1 --disk-size 200 > idd 2>/dev/null &&
    f0=$(free_mb $(cat id0)) && f=$(free_mb $(cat idd)) && echo "free $f0 / $f MiB" &&
    test "$f" -ge 200 && test "$f0" -lt 200 &&
    grep -q "\"diskSizeMB\": " "$E2B_DATA_DIR/templates/$(cat idd)/current/template.json" &&
    sz=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"diskSizeMB\"])" \
        "$E2B_DATA_DIR/templates/$(cat idd)/current/template.json") &&
    test "$sz" -ge 200 &&
    test_expect_code 2 e2b template build -n td -p v1 --disk-size -5 2>err && test_grep "disk-size" err
'

test_done
