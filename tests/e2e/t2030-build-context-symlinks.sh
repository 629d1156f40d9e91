#!/bin/sh
# Symlinks in a build context must not reach the host: COPY/ADD sources and
# RUN --mount=type=bind sources are resolved inside the context as if it were
# "/" (BuildKit's rule), a symlink inside a copied tree is copied as a
# symlink, and a read-write bind's writes are thrown away. Each attack runs
# from a directory context and from a git repository context (git keeps the
# symlinks), and would leave host files in the template, or marks on the
# host, if the defence were missing.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-image.sh"

test_have_root || { echo "1..0 # SKIP template builds need root"; exit 0; }
for tool in busybox debugfs git; do
    command -v $tool >/dev/null || { echo "1..0 # SKIP no $tool"; exit 0; }
done
test -s /etc/shadow || { echo "1..0 # SKIP no /etc/shadow to steal"; exit 0; }

tpl_img() { echo "$E2B_DATA_DIR/templates/$(cat "$1")/current/rootfs.ext4"; }
img_cat() { debugfs -R "cat $2" "$(tpl_img "$1")" 2>/dev/null; }
img_has() { debugfs -R "stat $2" "$(tpl_img "$1")" 2>&1 | grep -q "Inode:"; }
# a name no host has
MARK=e2b-pwned-$$-$(date +%s%N)

img_busybox bb 1 > /dev/null 2>&1 || { echo "Bail out! cannot make the busybox image"; exit 1; }
IMG=oci:$TRASH/bb:1

# ctx: h -> / (absolute), up -> ../../../.. (relative, climbing), its own
# etc/shadow, and a tree holding a symlink that points at the host's shadow
mkctx() {
    mkdir -p "$1/etc" "$1/tree" &&
    ln -s / "$1/h" && ln -s ../../../../../../.. "$1/up" &&
    echo "the context's own shadow" > "$1/etc/shadow" &&
    ln -s /etc/shadow "$1/tree/link" && echo data > "$1/tree/file"
}
# A git repository holding the same context, committed.
mkrepo() {
    mkdir -p "$1" && mkctx "$1" &&
    (cd "$1" && git init -q -b main && git add -A &&
     git -c user.email=t@t -c user.name=t commit -qm ctx)
}
mkctx dirctx
mkrepo repo

# build NAME DOCKERFILE-TEXT: from the dir context, then from the git one
# (NAME-git); ids in NAME.id and NAME-git.id, stderr in NAME.err
build_both() {
    printf '%s\n' "$2" > dirctx/Dockerfile &&
    (cd repo && printf '%s\n' "$2" > Dockerfile && git add Dockerfile &&
     git -c user.email=t@t -c user.name=t commit -qm "$1") &&
    e2b template build -n "$1" dirctx > "$1.id" 2> "$1.err" &&
    e2b template build -n "$1-git" "file://$TRASH/repo" > "$1-git.id" 2> "$1-git.err"
}
fail_both() {
    printf '%s\n' "$2" > dirctx/Dockerfile &&
    (cd repo && printf '%s\n' "$2" > Dockerfile && git add Dockerfile &&
     git -c user.email=t@t -c user.name=t commit -qm "$1") &&
    test_expect_code 1 e2b template build -n "$1" dirctx 2> "$1.err" &&
    test_expect_code 1 e2b template build -n "$1-git" "file://$TRASH/repo" 2> "$1-git.err"
}

test_expect_success 'the git context keeps the symlinks' '
    git -C repo ls-files -s h | grep -q "^120000" && git -C repo ls-files -s tree/link | grep -q "^120000"
'

test_expect_success 'COPY h/etc/shadow (h -> /) copies the context'"'"'s etc/shadow, not the host'"'"'s' '
    build_both cshadow "FROM $IMG
COPY h/etc/shadow /stolen
COPY up/etc/shadow /stolen-up" &&
    for t in cshadow cshadow-git; do
        test "$(img_cat $t.id /stolen)" = "the context'"'"'s own shadow" &&
        test "$(img_cat $t.id /stolen-up)" = "the context'"'"'s own shadow" || return 1
    done
'

test_expect_success 'COPY of a host path through h that the context lacks: not in the build context' '
    fail_both cpasswd "FROM $IMG
COPY h/etc/passwd /stolen" &&
    test_grep "COPY h/etc/passwd: not in the build context" cpasswd.err &&
    test_grep "COPY h/etc/passwd: not in the build context" cpasswd-git.err &&
    fail_both cglob "FROM $IMG
COPY h/etc/pass* /stolen/" &&
    test_grep "no source files match" cglob.err && test_grep "no source files match" cglob-git.err
'

test_expect_success 'a symlink inside a copied tree is copied as a symlink, not followed' '
    build_both ctree "FROM $IMG
COPY tree /tree
COPY h/tree/ /tree2/" &&
    for t in ctree ctree-git; do
        debugfs -R "stat /tree/link" "$(tpl_img $t.id)" 2>/dev/null > st &&
        test_grep "Type: symlink" st && test_grep "Fast link dest: \"/etc/shadow\"" st &&
        debugfs -R "stat /tree2/link" "$(tpl_img $t.id)" 2>/dev/null | grep -q "Type: symlink" &&
        test "$(img_cat $t.id /tree/file)" = data || return 1
    done
'

test_expect_success 'ADD through h: the context'"'"'s file, not the host'"'"'s' '
    build_both ashadow "FROM $IMG
ADD h/etc/shadow /added" &&
    test "$(img_cat ashadow.id /added)" = "the context'"'"'s own shadow" &&
    test "$(img_cat ashadow-git.id /added)" = "the context'"'"'s own shadow"
'

test_expect_success 'RUN --mount=type=bind,source=h,rw: the context, and its writes are thrown away' '
    build_both brw "FROM $IMG
RUN --mount=type=bind,source=h,target=/h,rw sh -c \"echo pwned > /h/$MARK; mkdir -p /h/etc; echo pwned > /h/etc/$MARK; ls /h > /hlist; cat /h/etc/shadow > /hshadow\"" &&
    test ! -e "/$MARK" && test ! -e "/etc/$MARK" &&
    test ! -e "dirctx/$MARK" && test ! -e "dirctx/etc/$MARK" &&
    for t in brw brw-git; do
        img_cat $t.id /hlist | grep -qx tree && ! img_cat $t.id /hlist | grep -qx proc &&
        test "$(img_cat $t.id /hshadow)" = "the context'"'"'s own shadow" || return 1
    done
'

test_expect_success 'RUN --mount=type=bind,source=h/etc (read-only): the context'"'"'s etc' '
    build_both bro "FROM $IMG
RUN --mount=type=bind,source=h/etc,target=/he sh -c \"cat /he/shadow > /he.out; if echo x > /he/$MARK; then echo writable; fi\"" &&
    test "$(img_cat bro.id /he.out)" = "the context'"'"'s own shadow" &&
    test "$(img_cat bro-git.id /he.out)" = "the context'"'"'s own shadow" &&
    test ! -e "dirctx/etc/$MARK" && test ! -e "/etc/$MARK"
'

test_expect_success 'a bind target through an image symlink stays in the image' '
    build_both btarget "FROM $IMG
RUN ln -s /etc /etclink
RUN --mount=type=bind,source=tree,target=/etclink/mnt cat /etclink/mnt/file > /bound.txt && cat /etc/mnt/file > /bound2.txt" &&
    test "$(img_cat btarget.id /bound.txt)" = data && test "$(img_cat btarget.id /bound2.txt)" = data
'

test_expect_success 'a git context is the checked-out tree: no .git in it' '
    build_both cdot "FROM $IMG
COPY . /ctxcopy" &&
    img_has cdot-git.id /ctxcopy/tree/file && ! img_has cdot-git.id /ctxcopy/.git
'

test_expect_success 'a bind mount of the context leaves out what .dockerignore excludes' '
    mkdir -p igctx/keep && echo secret > igctx/.env && echo kept > igctx/keep/f && printf ".env\n" > igctx/.dockerignore &&
    printf "FROM %s\nRUN --mount=type=bind,target=/c sh -c \"ls -A /c > /clist; cat /c/keep/f > /kept\"\n" "$IMG" > igctx/Dockerfile &&
    e2b template build -n tig igctx > tig.id 2> tig.err &&
    test "$(img_cat tig.id /kept)" = kept && img_cat tig.id /clist > clist &&
    test_grep "^keep$" clist && test_grep -v "^.env$" clist
'

test_expect_success 'nothing of the host in the templates, nothing left mounted' '
    root_line=$(grep "^root:" /etc/shadow) && test -n "$root_line" &&
    ! grep -rqF "$root_line" "$E2B_DATA_DIR/templates" &&
    ! grep -q "$TRASH" /proc/self/mountinfo
'

test_done
