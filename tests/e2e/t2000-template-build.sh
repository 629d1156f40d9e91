#!/bin/sh
# e2b template build from scratch: a minimal root made of the host's dash
# and its libraries; COPY, .dockerignore, ENV/ARG, RUN, metadata, the user
# account, ext4 content, git contexts, e2b.toml; bad input leaves v1 intact.
. "$(dirname "$0")/test-lib.sh"

command -v debugfs >/dev/null || { echo "1..0 # SKIP no debugfs"; exit 0; }

mkroot() { # dir: a context holding a tiny root (dash + libs + etc)
    mkdir -p "$1/root/bin" "$1/root/etc" &&
    cp /bin/dash "$1/root/bin/sh" &&
    for l in $(ldd /bin/dash | grep -o "/[^ ]*"); do
        mkdir -p "$1/root$(dirname $l)" && cp "$l" "$1/root$l" || return 1
    done &&
    printf "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n" > "$1/root/etc/passwd" &&
    printf "root:x:0:\nnogroup:x:65534:\n" > "$1/root/etc/group"
}
tpl_dir() { echo "$E2B_DATA_DIR/templates/$(cat "$1")/current"; }
img_cat() { debugfs -R "cat $2" "$1/rootfs.ext4" 2>/dev/null; }

mkroot ctx
echo hi > ctx/hello.txt
echo secret > ctx/secret.txt
mkdir -p ctx/sub/deep && echo d > ctx/sub/deep/x.log && echo k > ctx/sub/keep.log
printf 'secret.txt\n**/*.log\n!sub/keep.log\n' > ctx/.dockerignore
cat > ctx/e2b.Dockerfile <<'DF'
# a comment
FROM scratch
ARG GREETING=hello
COPY root/ /
ENV FOO=bar \
    BAZ="two words"
WORKDIR /app
COPY hello.txt sub ./
COPY --chown=nobody:nogroup --chmod=600 hello.txt /owned.txt
RUN echo "$GREETING $FOO" > /app/run.txt; echo step-output; id -u 2>/dev/null; true
RUN <<EOS
echo line1 > /app/heredoc.txt
echo "$FOO" >> /app/heredoc.txt
EOS
LABEL org.example=yes
EXPOSE 8080
STOPSIGNAL SIGINT
VOLUME /data
ENTRYPOINT ["/bin/sh", "-e"]
CMD ["/bin/sh"]
DF

test_expect_success 'build from a directory context' '
    e2b template build -n t1 --build-arg GREETING=hey --memory-mb 1024 --cpu-count 3 -p ctx > id 2>err &&
    test_grep "^\[1/15\] FROM scratch" err && test_grep "step-output" err &&
    test -s id
'

test_expect_success 'RUN saw ARG and ENV; files copied; ignored files left out' '
    d=$(tpl_dir id) &&
    test "$(img_cat $d /app/run.txt)" = "hey bar" &&
    test "$(img_cat $d /app/hello.txt)" = "hi" &&
    test "$(img_cat $d /app/keep.log)" = "k" &&
    printf "line1\nbar\n" > want && img_cat $d /app/heredoc.txt > got && cmp want got &&
    test ! -e $d/rootfs/app/deep/x.log && test ! -e $d/rootfs/app/secret.txt &&
    test "$(stat -c %u:%g:%a $d/rootfs/owned.txt)" = "65534:65534:600"
'

test_expect_success 'user account and /.e2b' '
    d=$(tpl_dir id) &&
    img_cat $d /etc/passwd | grep -q "^user:x:1000:1000::/home/user:/bin/sh$" &&
    test "$(stat -c %u $d/rootfs/home/user)" = 1000 &&
    img_cat $d /.e2b | grep -q "^ENV_ID=$(cat id)$"
'

test_expect_success 'metadata in template.json' '
    m=$(tpl_dir id)/template.json &&
    python3 - "$m" "$(cat id)" <<PY
import json, sys
m = json.load(open(sys.argv[1]))
assert m["templateID"] == sys.argv[2], m
assert m["aliases"] == ["t1"] and m["names"] == ["t1"] and m["public"] is False
assert m["memoryMB"] == 1024 and m["buildStatus"] == "ready"
assert m["env"] == {"FOO": "bar", "BAZ": "two words"}, m["env"]
assert m["workdir"] == "/app" and m["cmd"] == ["/bin/sh"]
assert m["labels"] == {"org.example": "yes"} and "8080/tcp" in m["exposedPorts"]
assert m["cpuCount"] == 3, m["cpuCount"]
assert m["stopSignal"] == "SIGINT" and "/data" in m["volumes"], m
assert m["entrypoint"] == ["/bin/sh", "-e"], m["entrypoint"]
assert m["user"] == "user" and m["tags"] == ["default"], m
PY
'

test_expect_success 'a sandbox starts from the template' '
    export E2B_ENVD=$ENVD_BIN &&
    sid=$(e2b sandbox create -d t1) && test_atexit "E2B_ENVD=$ENVD_BIN e2b sandbox kill $sid" &&
    e2b sandbox exec $sid -- sh -c "read x < /app/run.txt; echo \"\$x|\$FOO|\$BAZ\"" > out &&
    test "$(cat out)" = "hey bar|bar|two words" &&
    e2b sandbox kill $sid
'

test_expect_success '.dockerignore: an exception inside an excluded directory is copied, nothing else of it' '
    mkdir di && cp -r ctx/root di/ && mkdir -p di/vendor/keep di/vendor/drop di/junk/deep &&
    echo k > di/vendor/keep/k && echo d > di/vendor/drop/d && echo v > di/vendor/top && echo j > di/junk/deep/j &&
    printf "vendor\njunk\n!vendor/keep\n" > di/.dockerignore &&
    printf "FROM scratch\nCOPY root/ /\nCOPY . /all/\nCOPY vendor /v/\n" > di/Dockerfile &&
    e2b template build -n tdi di > iddi 2>err && r=$(tpl_dir iddi)/rootfs &&
    test "$(cat $r/all/vendor/keep/k)" = k && test ! -e $r/all/vendor/drop && test ! -e $r/all/vendor/top &&
    test ! -e $r/all/junk && test "$(cat $r/v/keep/k)" = k && test ! -e $r/v/top &&
    printf "FROM scratch\nCOPY root/ /\nCOPY junk /j/\n" > di/Dockerfile &&
    test_expect_code 1 e2b template build -n tdi di 2>err && test_grep "COPY junk: not in the build context" err
'

test_expect_success 'template list shows it, names as plain text' '
    e2b template list --json > list && grep -q "$(cat id)" list &&
    e2b template list > table && grep "^$(cat id) " table > row &&
    test_grep " t1 " row && test_grep -v "\\[" table
'

test_expect_success 'e2b.toml read and template_id written back' '
    cp -r ctx ctx2 &&
    printf "dockerfile = \"e2b.Dockerfile\"\ntemplate_name = \"t2\"\nmemory_mb = 256\n" > ctx2/e2b.toml &&
    e2b template build -p ctx2 > id2 2>/dev/null &&
    grep -q "^template_id = \"$(cat id2)\"$" ctx2/e2b.toml &&
    grep -q "\"memoryMB\": 256" $(tpl_dir id2)/template.json
'

test_expect_success 'dry run prints instructions and builds nothing' '
    e2b template list --json > before && find "$E2B_DATA_DIR" | sort > files.before &&
    e2b template build --dry-run --json -n dry -p ctx > dry &&
    grep -q "\"instruction\": \"RUN\"" dry &&
    e2b template list --json > after && test_cmp before after &&
    find "$E2B_DATA_DIR" | sort > files.after && test_cmp files.before files.after
'

test_expect_success 'git context with #ref:subdir' '
    mkroot repo/app && cp ctx/e2b.Dockerfile ctx/hello.txt repo/app/ && cp -r ctx/sub repo/app/ &&
    (cd repo && git init -q -b main && git add -A && git -c user.email=t@t -c user.name=t commit -qm 1 &&
     git tag v1 && echo changed > app/hello.txt && git -c user.email=t@t -c user.name=t commit -qam 2) &&
    e2b template build -n tgit "file://$TRASH/repo#v1:app" > idg 2>err &&
    test "$(img_cat $(tpl_dir idg) /app/hello.txt)" = "hi" &&
    e2b template build -n tgit2 "$TRASH/repo#main:app" > idg2 2>err &&
    test "$(img_cat $(tpl_dir idg2) /app/hello.txt)" = "changed" &&
    ! ls "${TMPDIR:-/tmp}" | grep -q "^git-context-"
'

v1_intact() {
    d=$(tpl_dir id) && test "$(img_cat $d /app/run.txt)" = "hey bar" &&
    test "$(readlink $E2B_DATA_DIR/templates/$(cat id)/current)" = "$(cat v1link)" &&
    test -z "$(ls $E2B_DATA_DIR/templates/.staging 2>/dev/null)"
}
readlink $E2B_DATA_DIR/templates/$(cat id)/current > v1link

test_expect_success 'a failing RUN names its exit code and output; v1 stays' '
    mkdir bad && cp -r ctx/root bad/ &&
    printf "FROM scratch\nCOPY root/ /\nRUN echo before-fail; exit 7\n" > bad/Dockerfile &&
    test_expect_code 1 e2b template build -n t1 bad 2>err &&
    test_grep "Dockerfile:3: RUN.*exit code 7" err && test_grep "before-fail" err &&
    v1_intact
'

test_expect_success 'malformed Dockerfile: line and column' '
    printf "FROM scratch\n  BOGUS x\n" > bad/Dockerfile &&
    ! e2b template build -n t1 bad 2>err && test_grep "Dockerfile:2:3: unknown instruction .BOGUS." err &&
    v1_intact
'

test_expect_success 'unknown base image' '
    printf "FROM 127.0.0.1:1/nosuch/img:1\n" > bad/Dockerfile &&
    ! e2b template build -n t1 bad 2>err && test_grep "unknown base image" err && v1_intact
'

test_expect_success 'COPY ../ refused' '
    printf "FROM scratch\nCOPY ../etc/passwd /x\n" > bad/Dockerfile &&
    ! e2b template build -n t1 bad 2>err && test_grep "outside the build context" err && v1_intact
'

test_expect_success 'a full disk fails clearly and leaves the old build' '
    mkdir small && mount -t tmpfs -o size=32m tmpfs small && test_atexit "umount $TRASH/small" &&
    mkdir small/data && cp -r ctx bigctx && rm bigctx/e2b.Dockerfile && head -c 40000000 /dev/zero > bigctx/big.bin &&
    printf "FROM scratch\nCOPY root/ /\nCOPY big.bin /\n" > bigctx/Dockerfile &&
    E2B_DATA_DIR=$TRASH/small/data e2b template build -n small -p ctx > ids 2>/dev/null &&
    ! E2B_DATA_DIR=$TRASH/small/data e2b template build -n small bigctx 2>err &&
    test_grep "No space left" err &&
    test -z "$(ls $TRASH/small/data/templates/.staging 2>/dev/null)" &&
    E2B_DATA_DIR=$TRASH/small/data e2b template list --json | grep -q "$(cat ids)" &&
    test "$(img_cat $TRASH/small/data/templates/$(cat ids)/current /app/run.txt)" = "hello bar"
'

test_expect_success 'start and ready commands run after the build; a never-ready build fails' '
    e2b template build -n tready -c "echo started" --ready-cmd "read x < /app/run.txt" ctx > idr 2>err &&
    grep -q "\"startCmd\": \"echo started\"" $(tpl_dir idr)/template.json &&
    ! e2b template build -n tready --ready-cmd "exit 3" --ready-timeout 1 ctx 2>err &&
    test_grep "ready command did not succeed" err &&
    test "$(readlink $E2B_DATA_DIR/templates/$(cat idr)/current)" != ""
'

test_expect_success 'the ready command: its output in the error; a hanging one is killed at --ready-timeout' '
    test_expect_code 1 e2b template build -n tready --ready-cmd "echo not-ready-yet-42; exit 3" --ready-timeout 2 ctx 2>err &&
    test_grep "ready command did not succeed within 2 s" err && test_grep "not-ready-yet-42" err &&
    start=$(date +%s) &&
    test_expect_code 1 e2b template build -n tready --start-cmd "echo start-ran" \
        --ready-cmd "echo hanging-now; read x < /dev/tty; while :; do :; done" --ready-timeout 3 ctx 2>err &&
    end=$(date +%s) && test $((end - start)) -lt 30 &&
    test_grep "ready command: did not finish within 3 s (killed)" err && test_grep "hanging-now" err &&
    test_grep "start-ran" err &&
    # the build returned after its step was gone, not before: no process,
    # no staging entry left at that moment
    { pgrep -af "echo hanging-now" > left || :; } && test_cmp /dev/null left &&
    ls -A "$E2B_DATA_DIR/templates/.staging" > staged && test_cmp /dev/null staged
'

test_expect_success '--start-cmd is --cmd; tags: NAME:TAG and --tag, found by NAME:TAG, kept on their build' '
    e2b template build -n ttag:v2 --tag stable --start-cmd "echo started" ctx > idt 2>/dev/null &&
    python3 - "$(tpl_dir idt)/template.json" <<-PY &&
	import json, sys
	m = json.load(open(sys.argv[1]))
	assert m["startCmd"] == "echo started", m["startCmd"]
	assert m["aliases"] == ["ttag"] and sorted(m["tags"]) == ["stable", "v2"], m
	PY
    sid=$(e2b sandbox create -d ttag:stable) && e2b sandbox kill $sid &&
    test_must_fail e2b sandbox create -d ttag:nosuch 2>err && test_grep "template .ttag. has no tag .nosuch." err &&
    e2b template build -n ttag ctx > /dev/null 2>&1 &&
    grep -q "\"default\"" "$(tpl_dir idt)/template.json" &&
    sid=$(e2b sandbox create -d ttag:v2) && e2b sandbox kill $sid &&
    e2b template tags list ttag --json > tags.json &&
    python3 -c "import json; t = {x[\"tag\"] for x in json.load(open(\"tags.json\"))}; assert t == {\"v2\", \"stable\", \"default\"}, t"
'

test_expect_success 'template names: E2B'"'"'s rule, checked before anything is written' '
    find "$E2B_DATA_DIR" | sort > files.before &&
    for n in ../../escape a/b Upper "" "$(printf "%0129d" 0)" "x:bad/tag" "ok:"; do
        test_expect_code 2 e2b template build -n "$n" ctx 2>err || return 1
        test_grep "invalid \(template name\|tag\)" err || return 1
    done &&
    find "$E2B_DATA_DIR" | sort > files.after && test_cmp files.before files.after &&
    test_expect_code 2 e2b template build -n t1 --cpu-count 0 ctx 2>err && test_grep "cpu-count" err &&
    test_expect_code 2 e2b template build -n t1 --ready-timeout 0 ctx 2>err && test_grep "ready-timeout" err
'

test_expect_success 'no USER: sandboxes run as user, in its home; USER root is kept' '
    test "$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m[\"user\"], m[\"workdir\"])" \
        "$(tpl_dir id)/template.json")" = "user /app" &&
    mkdir -p ru && cp -r ctx/root ru/ && printf "FROM scratch\nCOPY root/ /\nUSER root\n" > ru/Dockerfile &&
    e2b template build -n troot ru > idru 2>/dev/null &&
    test "$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m[\"user\"], m[\"workdir\"])" \
        "$(tpl_dir idru)/template.json")" = "root None" &&
    printf "FROM scratch\nCOPY root/ /\n" > ru/Dockerfile && e2b template build -n tnouser ru > idnu 2>/dev/null &&
    sid=$(e2b sandbox create -d tnouser) && test_atexit "e2b sandbox kill $sid" &&
    e2b sandbox exec $sid -- sh -c "echo \$USER; pwd" > out && e2b sandbox kill $sid &&
    printf "user\n/home/user\n" > want && test_cmp want out
'

test_expect_success 'bad flags' '
    test_expect_code 2 e2b template build -n t1 --memory-mb 129 ctx 2>err &&
    test_expect_code 2 e2b template build -n t1 --network bogus ctx 2>err
'

test_done
