#!/bin/sh
# Templates built FROM real images, then sandboxes started from them: a
# busybox-static image and a Debian minimal root (debootstrap) served by
# Debian's docker-registry on loopback (filled with skopeo), the same images
# as oci-archive: and docker-archive: files, and a git repository context.
# Bad input (unknown image, 401/404/500, a corrupt blob, layers that try to
# escape the root, a failing RUN, a full disk, a malformed Dockerfile) fails
# clearly, writes nothing outside the build, and the previous version of the
# template still starts.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-image.sh"
. "$TEST_DIR/lib-sandbox.sh"

for tool in docker-registry skopeo busybox python3 git; do
    command -v $tool >/dev/null || { echo "1..0 # SKIP no $tool"; exit 0; }
done
unset DOCKER_CONFIG REGISTRY_AUTH_FILE XDG_RUNTIME_DIR


tpl_id() { e2b template list --json | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if sys.argv[1] in t.get("aliases", []): print(t["templateID"])' "$1"; }
tpl_link() { readlink "$E2B_DATA_DIR/templates/$(tpl_id "$1")/current"; }

# Start a sandbox from a template, run a script in it, kill it; prints the output.
in_sandbox() { # template script
    local sid rc=0
    sid=$(e2b sandbox create -d "$1") || return 1
    e2b sandbox exec "$sid" -- sh -c "$2" || rc=$?
    e2b sandbox kill "$sid" >/dev/null || rc=1
    sbx_gone "$sid" || rc=1
    return $rc
}

# Other sessions may add and remove host accounts while this runs, so the
# host's /etc is checked for what these builds would leave, not by checksum.
host_etc_clean() {
    ! grep -n "pwned\|^alice:x:1234:\|^bob:x:1500:\|^staff2:x:3000:" /etc/passwd /etc/group /etc/shadow
}
mkdir outside
touch outside/.keep

test_expect_success 'fixture: busybox-static OCI layout, oci-archive and docker-archive' '
    img_busybox busybox 1 bbroot &&
    skopeo inspect --raw oci:busybox:1 | grep -q tar+gzip &&
    img_archives busybox:1 bb &&
    test -s bb.oci.tar && test -s bb.docker.tar
'

# debootstrap runs once a day (cached); a machine without it skips the Debian cases.
DEBIAN=
if command -v debootstrap >/dev/null; then
    test_expect_success 'fixture: Debian bookworm minbase (debootstrap, cached) as an OCI layout' '
        img_debian > debian.dir && test -f "$(cat debian.dir)/index.json" &&
        skopeo inspect --raw "oci:$(cat debian.dir):bookworm" | grep -q tar+gzip
    '
    DEBIAN=$(cat debian.dir 2>/dev/null)
fi

registry_start open
htpasswd -Bbc "$TRASH/htpasswd" user s3cret 2>/dev/null
registry_start auth "$TRASH/htpasswd"
REG=${REG_open:-} REG_auth=${REG_auth:-}

python3 "$TEST_DIR/registry-fault.py" "$TRASH/fault.port" 500 > "$TRASH/fault.log" 2>&1 &
test_atexit "kill $!"
wait_for 100 test -s "$TRASH/fault.port"
FAULT500=127.0.0.1:$(cat "$TRASH/fault.port" 2>/dev/null)

test_expect_success 'push the images to the loopback registry' '
    test -n "$REG" &&
    registry_push busybox:1 "$REG/test/busybox:1" &&
    registry_push busybox:1 "$REG_auth/test/busybox:1" --dest-creds user:s3cret &&
    if [ -n "$DEBIAN" ]; then registry_push "$DEBIAN:bookworm" "$REG/test/debian:bookworm"; fi
'

# --- builds from good images ---------------------------------------------

mkdir -p bbctx/conf
echo "from the context" > bbctx/data.txt
echo "setting=1" > bbctx/conf/app.conf
cat > bbctx/e2b.Dockerfile <<DF
FROM $REG/test/busybox:1
ENV GREETING="hello world" APP_HOME=/srv/app
# Debian's busybox has no adduser: accounts are written the way it would
RUN echo "alice:x:1234:1234::/home/alice:/bin/sh" >> /etc/passwd && \\
    echo "alice:x:1234:" >> /etc/group && mkdir -p /home/alice \$APP_HOME && \\
    chown alice:alice /home/alice && echo "built as \$(id -un)" > \$APP_HOME/run.txt
WORKDIR /srv/app
COPY data.txt ./
COPY conf/ /etc/myapp/
RUN chown alice /srv/app/data.txt
USER alice
RUN echo "\$GREETING from \$(id -un) in \$(pwd)" > /home/alice/who.txt
DF

test_expect_success 'busybox from the registry: RUN, ENV, WORKDIR, COPY, USER' '
    e2b template build -n tbb bbctx > id 2>err &&
    test -n "$(cat id)" && test "$(tpl_id tbb)" = "$(cat id)"
'

test_expect_success 'busybox sandbox: files, users, env and RUN results inside' '
    in_sandbox tbb "cat /srv/app/run.txt /home/alice/who.txt /srv/app/data.txt /etc/myapp/app.conf;
        echo \"env=\$GREETING|\$APP_HOME\"; id alice; id user; stat -c %U /srv/app/data.txt" > out &&
    cat > want <<-EOF &&
	built as root
	hello world from alice in /srv/app
	from the context
	setting=1
	env=hello world|/srv/app
	EOF
    head -n 5 out > got && test_cmp want got &&
    test_grep "^uid=1234(alice) gid=1234(alice)" out &&
    test_grep "^uid=1000(user)" out &&
    test "$(tail -n 1 out)" = alice
'
tbb_link=$(tpl_link tbb 2>/dev/null)

mkdir ocictx dockerctx
cat > ocictx/Dockerfile <<DF
FROM oci-archive:$TRASH/bb.oci.tar
RUN echo "from oci-archive" > /marker && echo staff2:x:3000: >> /etc/group
ENV SOURCE=oci-archive
DF
cat > dockerctx/Dockerfile <<DF
FROM docker-archive:$TRASH/bb.docker.tar
RUN echo "from docker-archive" > /marker
ENV SOURCE=docker-archive
DF

test_expect_success 'oci-archive: build and start' '
    e2b template build -n toci ocictx > /dev/null 2>err &&
    in_sandbox toci "cat /marker; echo \$SOURCE; grep ^staff2: /etc/group" > out &&
    printf "from oci-archive\noci-archive\nstaff2:x:3000:\n" > want && test_cmp want out
'

test_expect_success 'docker-archive: build and start' '
    e2b template build -n tdocker dockerctx > /dev/null 2>err &&
    in_sandbox tdocker "cat /marker; echo \$SOURCE" > out &&
    printf "from docker-archive\ndocker-archive\n" > want && test_cmp want out
'

test_expect_success 'git repository context whose Dockerfile uses the registry image' '
    mkdir -p repo/app && echo "v1 of the file" > repo/app/file.txt &&
    cat > repo/app/Dockerfile <<-DF &&
	FROM $REG/test/busybox:1
	COPY file.txt /from-git.txt
	RUN wc -c < /from-git.txt > /size.txt
	DF
    (cd repo && git init -q -b main && git add -A &&
     git -c user.email=t@t -c user.name=t commit -qm 1 && git tag v1 &&
     echo "v2 is longer than v1" > app/file.txt && git -c user.email=t@t -c user.name=t commit -qam 2) &&
    e2b template build -n tgit "file://$TRASH/repo#v1:app" > /dev/null 2>err &&
    in_sandbox tgit "cat /from-git.txt /size.txt" > out &&
    printf "v1 of the file\n15\n" > want && test_cmp want out
'

if [ -n "$DEBIAN" ]; then
    mkdir -p debctx
    echo "debian data" > debctx/data.txt
    cat > debctx/Dockerfile <<DF
FROM $REG/test/debian:bookworm
RUN useradd -m -s /bin/bash -u 1500 bob && echo "debian \$(cat /etc/debian_version)" > /etc/built.txt && \\
    dpkg-query -W -f='\${Status}\n' coreutils > /etc/coreutils.status
ENV LANG=C.UTF-8 DEB_VAR="with space"
WORKDIR /opt/work
COPY --chown=bob data.txt .
USER bob
RUN whoami > /home/bob/whoami.txt && echo "\$DEB_VAR" >> /home/bob/whoami.txt
DF
    test_expect_success 'Debian from the registry: useradd, dpkg, ENV, USER, WORKDIR, COPY --chown' '
        e2b template build -n tdeb debctx > /dev/null 2>err &&
        in_sandbox tdeb "cat /etc/built.txt /etc/coreutils.status /home/bob/whoami.txt;
            echo \"\$LANG|\$DEB_VAR\"; id bob; id user; stat -c %U:%a /opt/work/data.txt;
            cat /opt/work/data.txt; bash -c \"echo bash \\\$BASH_VERSION\" | cut -c1-6" > out &&
        test_grep "^debian 12\." out &&
        test_grep "^install ok installed$" out &&
        test_grep "^bob$" out && test_grep "^with space$" out &&
        test_grep "^C.UTF-8|with space$" out &&
        test_grep "^uid=1500(bob) gid=1500(bob)" out &&
        test_grep "^uid=1000(user)" out &&
        test_grep "^bob:644$" out && test_grep "^debian data$" out &&
        test_grep "^bash 5$" out
    '
    test_expect_success 'Debian from docker-archive (skopeo copy of the same image)' '
        skopeo --insecure-policy copy -q "oci:$DEBIAN:bookworm" "docker-archive:$TRASH/deb.docker.tar:e2b-test/debian:bookworm" &&
        mkdir debctx2 &&
        printf "FROM docker-archive:%s\nRUN echo ok > /ok.txt\n" "$TRASH/deb.docker.tar" > debctx2/Dockerfile &&
        e2b template build -n tdeb2 debctx2 > /dev/null 2>err &&
        rm -f "$TRASH/deb.docker.tar" &&
        in_sandbox tdeb2 "cat /ok.txt; cut -d. -f1 /etc/debian_version" > out &&
        printf "ok\n12\n" > want && test_cmp want out
    '
else
    test_skip 'Debian from the registry' 'no debootstrap'
    test_skip 'Debian from docker-archive' 'no debootstrap'
fi

# --- bad input: clear errors, nothing written outside, tbb still starts ----

# After a failed build of tbb: same version current, no staging left, the
# host's /etc untouched, nothing in outside/, and a sandbox still starts.
v1_ok() {
    test "$(tpl_link tbb)" = "$tbb_link" &&
    test -z "$(ls -A "$E2B_DATA_DIR/templates/.staging" 2>/dev/null)" &&
    host_etc_clean &&
    test "$(ls -A outside)" = .keep &&
    test "$(in_sandbox tbb "cat /srv/app/run.txt")" = "built as root"
}
mkdir bad
bad_build() { # dockerfile-text: build tbb from it; must fail; stderr in err
    printf "%s\n" "$1" > bad/Dockerfile &&
    test_expect_code 1 e2b template build -n tbb bad 2>err
}

test_expect_success 'the template starts before the bad builds (the check below can pass)' '
    test -n "$tbb_link" && v1_ok
'

test_expect_success 'unknown image in the registry: 404 named' '
    bad_build "FROM $REG/test/nosuch:1" && test_grep "^e2b: .*test/nosuch:1.*not found" err && v1_ok &&
    bad_build "FROM $REG/test/busybox:nosuchtag" && test_grep "^e2b: .*busybox:nosuchtag.*not found" err && v1_ok
'

test_expect_success 'unknown base image name (no such host)' '
    bad_build "FROM nosuch.invalid/img:1" && test_grep "^e2b: .*nosuch.invalid" err && v1_ok
'

test_expect_success 'registry answering 401 (no credentials for it)' '
    bad_build "FROM $REG_auth/test/busybox:1" && test_grep "^e2b: .*needs credentials" err && v1_ok
'

test_expect_success 'registry answering 500' '
    bad_build "FROM $FAULT500/test/busybox:1" && test_grep "^e2b: .*said.*500" err && test_grep "injected failure" err && v1_ok
'

# a blob whose bytes no longer match its digest: an image with a unique layer,
# corrupted in the registry's storage
test_expect_success 'a blob that does not match its digest is refused and not cached' '
    mkdir -p uniq/etc && date +%s%N > uniq/etc/unique && oci_layout_from_dir uniq uniqimg 1 &&
    registry_push uniqimg:1 "$REG/test/uniq:1" &&
    layer=$(skopeo inspect --tls-verify=false --raw "docker://$REG/test/uniq:1" |
        python3 -c "import json,sys; print(json.load(sys.stdin)[\"layers\"][0][\"digest\"][7:])") &&
    data=$TRASH/open/storage/docker/registry/v2/blobs/sha256/$(echo $layer | cut -c1-2)/$layer/data &&
    test -f "$data" && printf "corrupt" | dd of="$data" bs=1 seek=20 conv=notrunc 2>/dev/null &&
    bad_build "FROM $REG/test/uniq:1" && test_grep "^e2b: .*$layer.*does not match its digest" err &&
    ! find "$E2B_DATA_DIR/cache" -name "*$layer*" | grep -q . && v1_ok
'

# hostile layers, made with python's tarfile (tar itself refuses these names)
python3 - "$TRASH" <<'PY'
import io, sys, tarfile
trash = sys.argv[1]
def tar(path, entries):
    with tarfile.open(path, "w") as t:
        for name, kind, data in entries:
            i = tarfile.TarInfo(name)
            if kind == "dir":
                i.type, i.mode = tarfile.DIRTYPE, 0o755
                t.addfile(i)
            elif kind == "link":
                i.type, i.linkname = tarfile.SYMTYPE, data
                t.addfile(i)
            else:
                b = data.encode()
                i.size, i.mode = len(b), 0o644
                t.addfile(i, io.BytesIO(b))
deep = "../" * 12 + trash.lstrip("/")
tar(trash + "/dotdot.tar", [("etc", "dir", None), ("etc/ok", "file", "fine"),
                            ("../etc/passwd", "file", "pwned::0:0::/:/bin/sh\n")])
tar(trash + "/deepdotdot.tar", [(deep + "/outside/pwned", "file", "pwned")])
tar(trash + "/plant-abs.tar", [("evil", "link", trash + "/outside")])
tar(trash + "/plant-rel.tar", [("evil2", "link", deep + "/outside")])
tar(trash + "/through-abs.tar", [("evil/pwned", "file", "pwned")])
tar(trash + "/through-rel.tar", [("evil2/pwned", "file", "pwned")])
tar(trash + "/same-layer.tar", [("x", "link", trash + "/outside"), ("x/pwned", "file", "pwned")])
PY

hostile() { # layer-tar...: hostile.tmp:1, an OCI layout of the busybox root plus those layers
    local m
    rm -rf hostile.tmp && m=$(oci_image hostile.tmp amd64 bbroot "$@") &&
    _oci_index_json hostile.tmp 1 application/vnd.oci.image.manifest.v1+json "${m% *}" "${m#* }" \
        "$(_oci_platform amd64)"
}

test_expect_success 'a layer with ../etc/passwd is refused' '
    hostile "$TRASH/dotdot.tar" &&
    bad_build "FROM oci:$TRASH/hostile.tmp:1" && test_grep "^e2b: .*escapes the root" err && v1_ok &&
    hostile "$TRASH/deepdotdot.tar" &&
    bad_build "FROM oci:$TRASH/hostile.tmp:1" && test_grep "^e2b: .*escapes the root" err && v1_ok
'

test_expect_success 'a symlink planted by one layer, written through by the next, is refused' '
    hostile "$TRASH/plant-abs.tar" "$TRASH/plant-rel.tar" "$TRASH/through-abs.tar" &&
    bad_build "FROM oci:$TRASH/hostile.tmp:1" && test_grep "^e2b: .*escapes the root" err && v1_ok &&
    hostile "$TRASH/plant-abs.tar" "$TRASH/plant-rel.tar" "$TRASH/through-rel.tar" &&
    bad_build "FROM oci:$TRASH/hostile.tmp:1" && test_grep "^e2b: .*escapes the root" err && v1_ok
'

test_expect_success 'a symlink planted and written through in the same layer, via the registry' '
    hostile "$TRASH/same-layer.tar" &&
    skopeo --insecure-policy copy -q --dest-tls-verify=false oci:hostile.tmp:1 "docker://$REG/test/hostile:1" &&
    bad_build "FROM $REG/test/hostile:1" && test_grep "^e2b: .*escapes the root" err && v1_ok
'

# RUN steps run as root: they must not reach the host. Each attack leaves its
# proof in the image when it works (next to a mark that the step ran), or
# fails the build; v1_ok checks outside/ is untouched.
test_expect_success 'RUN cannot mknod a host disk, mount, or see host devices' '
    printf "%s\n" "FROM $REG/test/busybox:1" \
        "RUN echo ran > /ran1; mknod /blk b 8 0 && echo made-blk > /proof; ls /dev > /devlist; true" \
        "RUN echo ran > /ran2; mkdir -p /m && mount -t tmpfs x /m && echo mounted >> /proof; true" \
        "RUN echo ran > /ran3; if mount -o bind / /m 2>/dev/null; then echo bound >> /proof; fi; true" \
        > devctx.Dockerfile && mkdir -p devctx && mv devctx.Dockerfile devctx/Dockerfile &&
    e2b template build -n tdev devctx > /dev/null 2>err &&
    in_sandbox tdev "test ! -e /blk && cat /devlist /ran1 /ran2 /ran3; cat /proof 2>/dev/null; true" > out &&
    printf "fd\nfull\nnull\nrandom\nstderr\nstdin\nstdout\ntty\nurandom\nzero\nran\nran\nran\n" > want &&
    test_cmp want out && v1_ok
'

if [ -n "$DEBIAN" ]; then
    test_expect_success 'RUN cannot climb out of its root (chroot escape with perl)' '
        mkdir -p escctx && cat > escctx/Dockerfile <<-DF &&
	FROM $REG/test/debian:bookworm
	RUN perl -e '"'"'mkdir "/jail"; chroot "/jail" or die "chroot: \$!"; chdir ".." for 1..64; chroot "." or die "chroot back: \$!"; open(my \$f, ">", "$TRASH/outside/escaped") or die "open: \$!"; print \$f "out\n";'"'"' > /perl.out 2>&1; echo "perl exit \$?" >> /perl.out; true
	DF
        e2b template build -n tesc escctx > /dev/null 2>err && v1_ok &&
        in_sandbox tesc "cat /perl.out" > out && cat out &&
        test_grep "^open: No such file or directory" out && test_grep "^perl exit 2" out &&
        test ! -e "$TRASH/outside/escaped"
    '
else
    test_skip 'RUN cannot climb out of its root' 'no debootstrap'
fi

test_expect_success 'a failing RUN: its exit code and last output' '
    bad_build "FROM $REG/test/busybox:1
RUN echo first-line; echo about-to-fail >&2; exit 42" &&
    test_grep "^e2b: Dockerfile:2: .*exit code 42" err &&
    sed -n "/^e2b: /,\$p" err > tail && test_grep "about-to-fail" tail && v1_ok
'

test_expect_success 'a malformed Dockerfile: line and column' '
    bad_build "FROM $REG/test/busybox:1
RUN true
   NOTANINSTRUCTION x" && test_grep "^e2b: .*Dockerfile:3:4: .*NOTANINSTRUCTION" err && v1_ok
'

test_expect_success 'a full disk: the build fails clearly, the small store keeps its template' '
    mkdir small && mount -t tmpfs -o size=40m tmpfs small && test_atexit "umount $TRASH/small" &&
    export E2B_DATA_DIR=$TRASH/small/data && mkdir -p $E2B_DATA_DIR &&
    printf "FROM %s\nRUN echo small > /small.txt\n" "$REG/test/busybox:1" > bad/Dockerfile &&
    e2b template build -n tsmall --disk-size 1 bad > /dev/null 2>err &&
    link=$(tpl_link tsmall) && test -n "$link" &&
    printf "FROM %s\nRUN echo small > /small.txt\nRUN i=0; while [ \$i -lt 40 ]; do cat /bin/busybox >> /fill || exit 9; i=\$((i + 1)); done\n" "$REG/test/busybox:1" > bad/Dockerfile &&
    test_expect_code 1 e2b template build -n tsmall --disk-size 1 bad 2>err &&
    test_grep "^e2b: .*exit code 9" err && test_grep "No space left" err &&
    test "$(tpl_link tsmall)" = "$link" &&
    test -z "$(ls -A "$E2B_DATA_DIR/templates/.staging" 2>/dev/null)" &&
    test "$(in_sandbox tsmall "cat /small.txt")" = small
'

test_expect_success 'nothing written outside: host /etc, outside/, no build dirs left in TMPDIR' '
    host_etc_clean && test "$(ls -A outside)" = .keep &&
    test ! -e "$TRASH/etc" && test ! -e "$TRASH/outside/pwned"
'

test_done
