#!/bin/sh
# e2b template build from images (oci:, oci-archive:, docker-archive: of a
# busybox-static root), the step cache and --no-cache, multi-stage builds and
# --target, SHELL, COPY heredocs, ADD of tars and URLs, RUN --mount=type=cache,
# RUN networks, cgroup limits and the seccomp filter of build steps.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-image.sh"

command -v debugfs >/dev/null || { echo "1..0 # SKIP no debugfs"; exit 0; }
BUSYBOX=$(command -v busybox) || { echo "1..0 # SKIP no busybox"; exit 0; }
command -v setcap >/dev/null || { echo "1..0 # SKIP no setcap"; exit 0; }

tpl_dir() { echo "$E2B_DATA_DIR/templates/$(cat "$1")/current"; }
img_cat() { debugfs -R "cat $2" "$(tpl_dir "$1")/rootfs.ext4" 2>/dev/null; }
build() { e2b template build "$@" > id 2>err; }

test_expect_success 'an OCI layout of a busybox root' '
    mkdir -p root/bin root/etc root/tmp &&
    cp "$BUSYBOX" root/bin/busybox &&
    for a in $(root/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox root/bin/$a; done &&
    printf "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n" > root/etc/passwd &&
    printf "root:x:0:\nnogroup:x:65534:\n" > root/etc/group &&
    echo base > root/etc/base-file &&
    oci_layout_from_dir root img 1 &&
    IMG="oci:$TRASH/img:1" && echo "$IMG" > img.ref
'
IMG=oci:$TRASH/img:1

mkdir -p ctx
echo one > ctx/a.txt
cat > ctx/Dockerfile <<DF
FROM $IMG
ENV GREETING=hi
RUN cat /proc/sys/kernel/random/uuid > /uuid1
COPY a.txt /a.txt
RUN cat /proc/sys/kernel/random/uuid > /uuid2
CMD ["/bin/sh", "-c", "echo started"]
DF

test_expect_success 'FROM oci: image: layers unpacked, RUN ran, image config seeds metadata' '
    build -n img1 ctx && test_grep "layer 1/1 .* unpacked" err &&
    test "$(img_cat id /etc/base-file)" = base && test "$(img_cat id /a.txt)" = one &&
    test -n "$(img_cat id /uuid1)" && cp id id1 &&
    python3 - "$(tpl_dir id)/template.json" <<PY
import json, sys
m = json.load(open(sys.argv[1]))
assert m["env"]["PATH"].startswith("/usr/local/sbin"), m["env"]
assert m["env"]["GREETING"] == "hi"
assert m["cmd"] == ["/bin/sh", "-c", "echo started"], m["cmd"]
assert m["imageConfig"]["cmd"] == ["/bin/sh"], m["imageConfig"]
assert m["baseImageID"].startswith("sha256:")
PY
'

test_expect_success 'second build: root not unpacked again, every step cached' '
    build -n img2 ctx &&
    test_grep "already unpacked" err && ! grep -q "unpacked [0-9]" err &&
    test_grep "RUN cat /proc/sys/kernel/random/uuid > /uuid1 (cached)" err &&
    test_grep "steps: 0 run, 3 cached" err &&
    test "$(img_cat id /uuid1)" = "$(img_cat id1 /uuid1)" &&
    test "$(img_cat id /uuid2)" = "$(img_cat id1 /uuid2)"
'

test_expect_success 'a changed COPY source reruns that step and the ones after, not those before' '
    echo two > ctx/a.txt && build -n img2 ctx &&
    test_grep "uuid1 (cached)" err && ! grep -q "uuid2 (cached)" err &&
    test "$(img_cat id /uuid1)" = "$(img_cat id1 /uuid1)" &&
    test "$(img_cat id /uuid2)" != "$(img_cat id1 /uuid2)" && test "$(img_cat id /a.txt)" = two
'

test_expect_success '--no-cache runs every step again' '
    build -n img2 --no-cache ctx && test_grep "steps: 3 run, 0 cached" err &&
    test "$(img_cat id /uuid1)" != "$(img_cat id1 /uuid1)"
'

test_expect_success 'deletions in one step hide lower files in later steps and in the result' '
    mkdir wh && cat > wh/Dockerfile <<DF &&
FROM $IMG
RUN mkdir -p /d/sub && echo x > /d/sub/f && echo y > /d/keep
RUN rm /etc/base-file && rm -r /d/sub
RUN test ! -e /etc/base-file && test ! -e /d/sub && ls /d > /d.list && mkdir /d/sub && echo new > /d/sub/g
DF
    build -n wh wh && test "$(img_cat id /d.list)" = keep && test "$(img_cat id /d/sub/g)" = new &&
    debugfs -R "stat /etc/base-file" "$(tpl_dir id)/rootfs.ext4" 2>&1 | grep -q "File not found" &&
    debugfs -R "stat /d/sub/f" "$(tpl_dir id)/rootfs.ext4" 2>&1 | grep -q "File not found"
'

test_expect_success 'oci-archive: and docker-archive: sources' '
    skopeo copy -q oci:img:1 oci-archive:img.tar &&
    skopeo copy -q oci:img:1 docker-archive:docker.tar:busybox:1 &&
    mkdir arch && printf "FROM oci-archive:$TRASH/img.tar\nRUN echo oa > /from\n" > arch/Dockerfile &&
    build -n arch1 arch && test "$(img_cat id /from)" = oa && test "$(img_cat id /etc/base-file)" = base &&
    printf "FROM docker-archive:$TRASH/docker.tar:busybox:1\nRUN echo da > /from\n" > arch/Dockerfile &&
    build -n arch2 arch && test "$(img_cat id /from)" = da
'

test_expect_success 'FROM a registry image (docker-registry on 127.0.0.1), pulled once' '
    registry_start reg && registry_push img:1 "$REG_reg/test/bb:1" &&
    mkdir regctx && printf "FROM $REG_reg/test/bb:1\nRUN echo pulled > /from\n" > regctx/Dockerfile &&
    build -n reg1 regctx && test "$(img_cat id /from)" = pulled && test_grep "blob 2/2 [0-9a-f]* \(pulled\|cached\)" err &&
    grep -q "\"baseImage\": \"$REG_reg/test/bb:1\"" "$(tpl_dir id)/template.json" &&
    build -n reg2 regctx && test_grep "blob 2/2 .* cached" err && test_grep "(cached)" err
'

test_expect_success 'a sandbox starts from a template built on an image' '
    export E2B_ENVD=$ENVD_BIN &&
    sid=$(e2b sandbox create -d reg1) && test_atexit "E2B_ENVD=$ENVD_BIN e2b sandbox kill $sid" &&
    test "$(e2b sandbox exec $sid -- cat /from)" = pulled &&
    e2b sandbox kill $sid
'

mkdir -p ms
cat > ms/Dockerfile <<DF
FROM $IMG AS builder
RUN mkdir -p /out && echo built > /out/x
FROM builder AS tester
RUN test -f /out/x && echo tested > /out/t
FROM $IMG AS unused
RUN echo unused-stage-ran; exit 9
FROM scratch
COPY --from=builder /out/x /x
COPY --from=1 /out/t /t
COPY --from=$IMG /etc/base-file /b
DF

test_expect_success 'multi-stage: COPY --from a stage name, an index and an image; unneeded stages skipped' '
    build -n ms ms && ! grep -q unused-stage-ran err &&
    test "$(img_cat id /x)" = built && test "$(img_cat id /t)" = tested && test "$(img_cat id /b)" = base
'

test_expect_success '--target builds only that stage and what it needs' '
    build -n mst --target tester ms && test "$(img_cat id /out/t)" = tested &&
    ! grep -q unused-stage-ran err &&
    test_expect_code 1 e2b template build -n mst --target nosuch ms 2>err &&
    test_grep "target stage .nosuch. could not be found" err
'

test_expect_success 'dry run: expanded instructions of the needed stages only' '
    e2b template build --dry-run --json --target tester ms > dry &&
    python3 - dry <<PY
import json, sys
d = json.load(open(sys.argv[1]))
names = [s["name"] for s in d["stages"]]
assert names == ["builder", "tester"], names
assert d["stages"][1]["instructions"][1]["instruction"] == "RUN"
PY
'

test_expect_success 'SHELL wraps shell-form RUN; COPY heredoc; HEALTHCHECK recorded' '
    mkdir sh && cat > sh/Dockerfile <<DF &&
FROM $IMG
ARG WHO=world
SHELL ["/bin/sh", "-c", "echo via-shell >> /shell.log; eval \"\$1\"", "wrapper"]
RUN echo cmd-ran >> /shell.log
COPY <<EOT /etc/greeting
hello \$WHO
EOT
HEALTHCHECK --interval=5s CMD ["true"]
DF
    build -n sh sh &&
    printf "via-shell\ncmd-ran\n" > want && img_cat id /shell.log > got && test_cmp want got &&
    test "$(img_cat id /etc/greeting)" = "hello world" &&
    grep -q "\"intervalNs\": 5000000000" "$(tpl_dir id)/template.json"
'

test_expect_success 'ADD unpacks local tars (gzip, xz, bzip2, zstd) and refuses escaping entries' '
    mkdir -p add/t/d && echo in-tar > add/t/d/f &&
    tar -C add/t -czf add/a.tgz d && tar -C add/t -cJf add/a.txz d &&
    tar -C add/t -cjf add/a.tbz d && tar -C add/t --zstd -cf add/a.tzst d &&
    printf "FROM $IMG\nADD a.tgz /g/\nADD a.txz /x/\nADD a.tbz /b/\nADD a.tzst /z/\n" > add/Dockerfile &&
    build -n add add && for d in g x b z; do test "$(img_cat id /$d/d/f)" = in-tar || return 1; done &&
    python3 -c "
import tarfile, io
t = tarfile.open(\"add/evil.tar\", \"w\")
i = tarfile.TarInfo(\"../../escaped\"); d = b\"x\"; i.size = 1
t.addfile(i, io.BytesIO(d)); t.close()" &&
    printf "FROM $IMG\nADD evil.tar /e/\n" > add/Dockerfile &&
    test_expect_code 1 e2b template build -n add add 2>err && test_grep "ADD evil.tar" err &&
    test ! -e "$TRASH/escaped" && test "$(img_cat id /g/d/f)" = in-tar
'

test_expect_success 'ADD of an http URL, with --checksum' '
    mkdir -p www && echo served > www/file.txt && port=$(free_port) &&
    { python3 -m http.server -d www -b 127.0.0.1 $port >/dev/null 2>&1 & } &&
    srv=$! && test_atexit "kill $srv" &&
    wait_for 50 curl -sf http://127.0.0.1:$port/file.txt &&
    sum=$(sha256sum www/file.txt | cut -d" " -f1) &&
    printf "FROM $IMG\nADD --checksum=sha256:$sum http://127.0.0.1:$port/file.txt /dl/\n" > add/Dockerfile &&
    build -n url add && test "$(img_cat id /dl/file.txt)" = served &&
    printf "FROM $IMG\nADD --checksum=sha256:%064d http://127.0.0.1:$port/file.txt /dl/\n" 0 > add/Dockerfile &&
    test_expect_code 1 e2b template build -n url add 2>err && test_grep "checksum mismatch" err
'

test_expect_success 'RUN --mount=type=cache keeps its content across builds' '
    mkdir cm && printf "FROM $IMG\nRUN --mount=type=cache,target=/var/cache/x echo run >> /var/cache/x/log && wc -l < /var/cache/x/log > /count\n" > cm/Dockerfile &&
    build -n cm cm && test "$(img_cat id /count)" = 1 &&
    build -n cm --no-cache cm && test "$(img_cat id /count)" = 2 &&
    test -z "$(img_cat id /var/cache/x/log)"
'

test_expect_success 'RUN network: none by default, host when asked' '
    mkdir net && printf "FROM $IMG\nRUN grep -c : /proc/net/dev > /n1\nRUN --network=host grep -c : /proc/net/dev > /n2\n" > net/Dockerfile &&
    build -n net net && test "$(img_cat id /n1)" = 1 && test "$(img_cat id /n2)" -gt 1
'

test_expect_success 'RUN steps get a cgroup with --memory-mb and the seccomp filter' '
    mkdir lim && printf "FROM $IMG\nRUN cat /proc/self/cgroup > /cg\n" > lim/Dockerfile &&
    build -n lim --memory-mb 256 lim && img_cat id /cg | grep -q "build-" &&
    readlink "$E2B_DATA_DIR/templates/$(cat id)/current" > lim.link &&
    printf "FROM $IMG\nRUN mkdir -p /m && mount -t tmpfs none /m && echo mounted\n" > lim/Dockerfile &&
    test_expect_code 1 e2b template build -n lim lim 2>err &&
    test_grep "RUN: exit code" err && ! grep -q "^mounted" err &&
    test "$(readlink "$E2B_DATA_DIR/templates/$(cat id)/current")" = "$(cat lim.link)"
'

test_expect_success '--target: an unneeded stage'"'"'s image is not even pulled' '
    mkdir -p tg && cat > tg/Dockerfile <<DF &&
FROM 127.0.0.1:1/nosuch/image:1 AS unused
RUN exit 9
FROM $IMG AS wanted
RUN echo wanted > /w
DF
    build -n tg --target wanted tg && test "$(img_cat id /w)" = wanted && ! grep -q nosuch err &&
    test_expect_code 1 e2b template build -n tg --target unused tg 2>err && test_grep "nosuch/image:1" err
'

test_expect_success 'COPY follows the image'"'"'s own symlinks inside the image (merged /usr, /var/run -> /run)' '
    mkdir -p mu/usr mu/var mu/run mu/etc mu/usr/lib mu/usr/share/tool mu/etc/alternatives mu/tmp &&
    cp -r root/bin mu/usr/bin && cp -r root/etc/. mu/etc/ &&
    ln -s usr/bin mu/bin && ln -s usr/lib mu/lib && ln -s /run mu/var/run &&
    echo impl > mu/usr/share/tool/impl && ln -s /usr/share/tool/impl mu/etc/alternatives/tool &&
    oci_layout_from_dir mu muimg 1 &&
    mkdir -p symctx/rootfs/lib/x symctx/rootfs/var/run && echo lib > symctx/rootfs/lib/x/f.so &&
    echo pid > symctx/rootfs/var/run/app.pid && echo one > symctx/one &&
    cat > symctx/Dockerfile <<DF &&
FROM oci:$TRASH/muimg:1 AS base
COPY rootfs/ /
COPY one /var/run/
COPY one /lib
FROM scratch
COPY --from=base /etc/alternatives/tool /tool
COPY --from=base /var/run/app.pid /pid
DF
    build -n sym --target base symctx &&
    test "$(img_cat id /usr/lib/x/f.so)" = lib && test "$(img_cat id /run/app.pid)" = pid &&
    test "$(img_cat id /run/one)" = one && test "$(img_cat id /usr/lib/one)" = one &&
    debugfs -R "stat /lib" "$(tpl_dir id)/rootfs.ext4" 2>/dev/null | grep -q "Type: symlink" &&
    debugfs -R "stat /var/run" "$(tpl_dir id)/rootfs.ext4" 2>/dev/null | grep -q "Type: symlink" &&
    build -n sym2 symctx && test "$(img_cat id /tool)" = impl && test "$(img_cat id /pid)" = pid
'

test_expect_success 'a #! heredoc runs through its interpreter; exec form finds programs on the step PATH' '
    mkdir -p hd && cat > hd/Dockerfile <<DF &&
FROM $IMG
RUN printf "#!/bin/sh\necho interpreter-ran\ncat \"\\\$1\" > /script-copy\n" > /bin/myinterp && chmod +x /bin/myinterp
RUN <<EOF
#!/bin/myinterp
not shell at all (
EOF
ENV PATH=/opt/x/bin:\$PATH
RUN mkdir -p /opt/x/bin && printf "#!/bin/sh\necho tool-ran > /tool.out\n" > /opt/x/bin/mytool && chmod +x /opt/x/bin/mytool
RUN ["mytool"]
DF
    build -n hd hd && test_grep interpreter-ran err &&
    printf "#!/bin/myinterp\nnot shell at all (\n" > want && img_cat id /script-copy > got && test_cmp want got &&
    test "$(img_cat id /tool.out)" = tool-ran
'

test_expect_success 'COPY --exclude, --parents, symbolic --chmod; ADD --unpack=false' '
    mkdir -p cp/src/sub cp/a/b cp/a/d && echo k > cp/src/keep.txt && echo l > cp/src/x.log &&
    echo s > cp/src/sub/skip && echo n > cp/src/sub/deep.log && echo c > cp/a/b/c.txt && echo e > cp/a/d/e.txt &&
    echo m > cp/m.txt && chmod 0666 cp/m.txt && mkdir -p cp/dir && echo f > cp/dir/f && chmod 0755 cp/dir/f &&
    echo g > cp/dir/g && chmod 0600 cp/dir/g && tar -C cp -czf cp/t.tgz m.txt &&
    cat > cp/Dockerfile <<DF &&
FROM $IMG
COPY --exclude=*.log --exclude=sub/skip src/ /ex/
COPY --exclude=**/*.log src/ /ex2/
COPY --parents a/b/c.txt a/./d/e.txt /par/
COPY --chmod=u+x,go-w m.txt /m
COPY --chmod=a=rX,u+w dir /dir
ADD --unpack=false t.tgz /raw/
ADD t.tgz /unpacked/
DF
    build -n cp cp && d=$(tpl_dir id)/rootfs &&
    test -f $d/ex/keep.txt && test ! -e $d/ex/x.log && test ! -e $d/ex/sub/skip && test -f $d/ex/sub/deep.log &&
    test -f $d/ex2/keep.txt && test ! -e $d/ex2/x.log && test ! -e $d/ex2/sub/deep.log && test -f $d/ex2/sub/skip &&
    test "$(cat $d/par/a/b/c.txt)" = c && test "$(cat $d/par/d/e.txt)" = e && test ! -e $d/par/a/d &&
    test "$(stat -c %a $d/m)" = 744 &&
    test "$(stat -c %a $d/dir)" = 755 && test "$(stat -c %a $d/dir/f)" = 755 && test "$(stat -c %a $d/dir/g)" = 644 &&
    test -f $d/raw/t.tgz && test "$(cat $d/unpacked/m.txt)" = m
'

test_expect_success 'flags this builder cannot honour are refused, not ignored' '
    mkdir -p rf && printf "FROM $IMG\nRUN --security=insecure true\n" > rf/Dockerfile &&
    test_expect_code 1 e2b template build -n rf rf 2>err && test_grep "security=insecure is not supported" err &&
    printf "FROM $IMG\nADD --keep-git-dir=true https://example.invalid/x.git /x\n" > rf/Dockerfile &&
    test_expect_code 1 e2b template build -n rf rf 2>err && test_grep "keep-git-dir" err &&
    printf "FROM $IMG\nRUN --mount=type=cache,target=/c,sharing=locked echo locked > /c/x && cat /c/x > /out\n" > rf/Dockerfile &&
    build -n rf rf && test "$(img_cat id /out)" = locked
'

test_expect_success 'file capabilities and xattrs survive from layers and the context into rootfs.ext4' '
    mkdir -p xl/usr/local/bin && cp "$BUSYBOX" xl/usr/local/bin/grep && setcap cap_net_raw+ep xl/usr/local/bin/grep &&
    echo n > xl/note && python3 -c "import os; os.setxattr(\"xl/note\", \"user.e2b.test\", b\"from-layer\")" &&
    m=$(OCI_KEEP_OWNER=1 oci_image ximg amd64 root xl) &&
    _oci_index_json ximg 1 application/vnd.oci.image.manifest.v1+json ${m% *} ${m#* } "$(_oci_platform amd64)" &&
    mkdir -p xctx && echo c > xctx/ctxfile && cp "$BUSYBOX" xctx/ctxcap &&
    python3 -c "import os; os.setxattr(\"xctx/ctxfile\", \"user.e2b.test\", b\"from-context\")" &&
    setcap cap_net_bind_service+ep xctx/ctxcap &&
    printf "FROM oci:$TRASH/ximg:1\nCOPY ctxfile ctxcap /x/\nRUN echo step > /step\n" > xctx/Dockerfile &&
    build -n xattr xctx && img=$(tpl_dir id)/rootfs.ext4 &&
    debugfs -R "ea_list /usr/local/bin/grep" "$img" 2>/dev/null > ea1 && test_grep "security.capability" ea1 &&
    debugfs -R "ea_list /note" "$img" 2>/dev/null > ea2 && test_grep "user.e2b.test.*from-layer" ea2 &&
    debugfs -R "ea_list /x/ctxfile" "$img" 2>/dev/null > ea3 && test_grep "user.e2b.test.*from-context" ea3 &&
    debugfs -R "ea_list /x/ctxcap" "$img" 2>/dev/null > ea4 && test_grep "security.capability" ea4 &&
    getcap "$(tpl_dir id)/rootfs/usr/local/bin/grep" | grep -q cap_net_raw=ep &&
    getcap "$(tpl_dir id)/rootfs/x/ctxcap" | grep -q cap_net_bind_service=ep
'

test_expect_success 'nothing left mounted or staged' '
    test_grep -v "$TRASH" /proc/self/mountinfo &&
    { ls -A "$E2B_DATA_DIR/templates/.staging" > staged 2>/dev/null || : > staged; } &&
    test_cmp /dev/null staged &&
    { ls "$E2B_DATA_DIR/cache/build/layers" | grep "\.tmp-" > tmps || :; } &&
    test_cmp /dev/null tmps
'

test_done
