#!/bin/sh
# Volumes from the command line: e2b volume create|list|rm|ls|cp, mounted
# into sandboxes (--volume), kept after them, not deletable while mounted,
# their quota, and paths that try to leave a volume.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-sandbox.sh"

vol_json() { e2b volume list --json | python3 -c "import json,sys; d=[v for v in json.load(sys.stdin) if v['name']==sys.argv[1]]; print(d[0][sys.argv[2]] if d else '')" "$1" "$2"; }

test_expect_success 'create, list (no token), ls and cp both ways' '
    id=$(e2b volume create data) && echo "$id" | grep -Eq "^[a-z0-9]{20}$" &&
    e2b volume create --json other > other.json && test_grep "\"token\"" other.json &&
    e2b volume list > list && test_grep "data" list && test_grep "other" list &&
    e2b volume list --json > list.json && test_grep -v token list.json &&
    test_expect_code 1 e2b volume create data 2> err && test_grep "exists" err &&
    test_expect_code 1 e2b volume create "bad name" 2> err && test_grep "name" err &&
    printf "one\ntwo\n" > local.txt && e2b volume cp local.txt data:/dir/sub/file.txt &&
    echo piped | e2b volume cp - data:/piped.txt &&
    e2b volume ls data: > ls && test_grep "directory .*/dir$" ls && test_grep "file .*/piped.txt" ls &&
    e2b volume ls --depth 3 data > ls && test_grep "/dir/sub/file.txt" ls &&
    e2b volume ls data:/piped.txt > ls && test_grep "0644  6 " ls &&
    e2b volume cp data:/dir/sub/file.txt back.txt && test_cmp local.txt back.txt &&
    test "$(e2b volume cp "$id":/piped.txt -)" = piped &&
    test_expect_code 1 e2b volume cp data:/nope - 2> err && test_grep "not found" err &&
    test_expect_code 2 e2b volume cp local.txt back2.txt
'

test_expect_success ROOT 'a volume is an ext4 file system of its own, its files kept to the owner' '
    id=$(vol_json data volumeID) && d=$E2B_DATA_DIR/volumes/$id &&
    test "$(stat -c %a "$d")" = 700 && test "$(stat -c %a "$d/volume.img")" = 600 &&
    test "$(stat -c %a "$d/volume.json")" = 600 &&
    grep -q " $d/fs .* ext4 " /proc/self/mountinfo
'

test_expect_success 'mounted into a sandbox: both ways, kept after it; not deleted while mounted' '
    sbx_create host --volume data:/mnt/data --volume other:/home/user/other && a=$SBX &&
    test "$(e2b sandbox exec "$a" cat /mnt/data/piped.txt)" = piped &&
    e2b sandbox exec "$a" "echo from-a > /mnt/data/a.txt && mkdir /home/user/other/x" &&
    e2b sandbox info --json "$a" > info.json && test_grep "\"path\": \"/mnt/data\"" info.json &&
    test_expect_code 1 e2b volume rm data 2> err && test_grep "in use by sandbox $a" err &&
    e2b sandbox kill "$a" && sbx_wait_gone "$a" &&
    sbx_create host --volume data:/mnt/again && b=$SBX &&
    test "$(e2b sandbox exec "$b" cat /mnt/again/a.txt)" = from-a &&
    test_expect_code 2 e2b sandbox exec "$b" "ls /home/user/other" &&
    e2b sandbox kill "$b" && sbx_wait_gone "$b" &&
    test "$(e2b volume cp data:/a.txt -)" = from-a
'

test_expect_success ROOT 'the quota holds inside the sandbox and for cp' '
    e2b volume create --size 16 small > /dev/null &&
    sbx_create host --volume small:/q && s=$SBX &&
    test_expect_code 1 e2b sandbox exec "$s" "head -c 24M /dev/zero > /q/fill" 2> err &&
    test_grep "No space left" err &&
    e2b sandbox kill "$s" && sbx_wait_gone "$s" &&
    head -c 24000000 /dev/zero > big &&
    test_expect_code 1 e2b volume cp big small:/big 2> err && test_grep "full" err &&
    e2b volume rm small
'

test_expect_success 'paths out of a volume are refused: .., symlinks, mount points' '
    test_expect_code 1 e2b volume cp local.txt "data:/../escape" 2> err && test_grep "out of the volume" err &&
    test ! -e "$E2B_DATA_DIR/volumes/escape" &&
    sbx_create host --volume data:/mnt/data && c=$SBX &&
    e2b sandbox exec "$c" "ln -s /etc /mnt/data/etc-link && ln -s ../../.. /mnt/data/up" &&
    test_expect_code 1 e2b volume cp data:/etc-link/passwd - 2> err && test_grep "out of the volume" err &&
    test_expect_code 1 e2b volume cp data:/up/volume.json - 2> err && test_grep "out of the volume" err &&
    test_expect_code 1 e2b volume cp local.txt data:/etc-link/x 2> err &&
    e2b sandbox kill "$c" &&
    test_expect_code 1 e2b sandbox create -d host --volume data:/proc/v 2> err && test_grep "mount path" err &&
    test_expect_code 1 e2b sandbox create -d host --volume data:/a/../etc 2> err && test_grep "mount path" err &&
    test_expect_code 1 e2b sandbox create -d host --volume nope:/v 2> err && test_grep "volume .nope. not found" err &&
    test_expect_code 2 e2b sandbox create -d host --volume data 2> err
'

test_expect_success 'rm: several at once; gone from list and disk' '
    e2b volume rm data other && e2b volume list > list && test_grep -v data list &&
    test -z "$(ls "$E2B_DATA_DIR/volumes")" &&
    ! grep -q "$E2B_DATA_DIR/volumes" /proc/self/mountinfo &&
    test_expect_code 1 e2b volume rm data
'

test_done
