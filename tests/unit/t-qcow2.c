/* t-qcow2.c - disk overlays: the header this module writes reads back, bad
 * input is refused, and QEMU itself (where installed) opens the overlay,
 * reads the backing file's bytes through it and keeps its own writes in the
 * overlay, the backing file untouched. */
#include "tap.h"
#include "fsutil.h"
#include "qcow2.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *run_qemu_io(const char *overlay, const char *const *cmds)
{
    /* QEMU with no machine, the overlay as a drive, HMP's qemu-io over QMP on stdio */
    char script[4096] = "{\"execute\":\"qmp_capabilities\"}\n";
    for (const char *const *c = cmds; *c; c++) {
        size_t n = strlen(script);
        snprintf(
            script + n, sizeof(script) - n,
            "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"qemu-io d \\\"%s\\\"\"}}\n",
            *c);
    }
    strncat(script, "{\"execute\":\"quit\"}\n", sizeof(script) - strlen(script) - 1);
    char in[] = "/tmp/t-qcow2-in.XXXXXX";
    int ifd = mkstemp(in);
    if (ifd < 0 || e2b_write_all(ifd, script, strlen(script)) < 0)
        return NULL;
    close(ifd);
    char *cmd = xasprintf("qemu-system-x86_64 -M none -nodefaults -display none -qmp stdio "
                          "-drive if=none,id=d,format=qcow2,file=%s < %s 2>&1",
                          overlay, in);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p)
        return NULL;
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        fwrite(buf, 1, n, m);
    pclose(p);
    fclose(m);
    unlink(in);
    return out;
}

int main(void)
{
    char dir[] = "/tmp/t-qcow2.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char *base = e2b_path_join(dir, "base.raw"), *ov = e2b_path_join(dir, "ov.qcow2");
    /* a 1 GiB sparse backing file with a pattern at 1 MiB */
    int fd = open(base, O_RDWR | O_CREAT | O_TRUNC, 0600);
    unsigned char pat[65536];
    memset(pat, 0x5a, sizeof(pat));
    ok(fd >= 0 && ftruncate(fd, 1 << 30) == 0 && e2b_pwrite_all(fd, pat, sizeof(pat), 1 << 20) == 0,
       "backing file");
    close(fd);

    struct e2b_error *err = NULL;
    ok(e2b_qcow2_create_overlay(ov, base, "raw", UINT64_C(1) << 30, &err) == 0, "overlay made: %s",
       err ? err->msg : "");
    ok(e2b_qcow2_is(ov) && !e2b_qcow2_is(base), "qcow2 told from raw");
    uint64_t size = 0;
    char *backing = NULL, *fmt = NULL;
    ok(e2b_qcow2_info(ov, &size, &backing, &fmt, NULL) == 0, "header read back");
    is_int(size, UINT64_C(1) << 30, "virtual size");
    is_str(backing, base, "backing file");
    is_str(fmt, "raw", "backing format");
    free(backing), free(fmt);
    struct stat st;
    ok(stat(ov, &st) == 0 && st.st_blocks * 512 <= 4 * 65536 && (st.st_mode & 0777) == 0600,
       "small (%lld blocks) and private", (long long)st.st_blocks);

    /* refused */
    e2b_error_free(err), err = NULL;
    ok(e2b_qcow2_create_overlay(ov, "relative.raw", "raw", 1 << 20, &err) < 0 &&
           err->code == E2B_ERR_INVALID,
       "a relative backing path is refused");
    e2b_error_free(err), err = NULL;
    ok(e2b_qcow2_create_overlay(ov, base, "vmdk", 1 << 20, &err) < 0 && strstr(err->msg, "vmdk"),
       "an unknown backing format is refused by name");
    e2b_error_free(err), err = NULL;
    ok(e2b_qcow2_create_overlay(ov, base, "raw", 1000, &err) < 0,
       "a size not in sectors is refused");
    e2b_error_free(err), err = NULL;
    ok(e2b_qcow2_info(base, NULL, NULL, NULL, &err) < 0 && err->code == E2B_ERR_INVALID,
       "a raw file is not read as qcow2");
    e2b_error_free(err), err = NULL;
    ok(e2b_qcow2_is(ov), "a refused create left the old overlay");

    /* QEMU's own qcow2 driver: reads through, writes stay in the overlay */
    if (system("command -v qemu-system-x86_64 >/dev/null 2>&1") != 0) {
        printf("# no qemu-system-x86_64: the overlay is not opened by QEMU here\n");
    } else {
        const char *cmds[] = { "read -P 0x5a 1M 64k", "read -P 0 0 64k", "write -P 0xc3 2M 64k",
                               "read -P 0xc3 2M 64k", NULL };
        char *out = run_qemu_io(ov, cmds);
        ok(out && !strstr(out, "error") && !strstr(out, "Pattern verification failed") &&
               strstr(out, "read 65536/65536 bytes at offset 1048576") &&
               strstr(out, "wrote 65536/65536 bytes at offset 2097152"),
           "QEMU reads the backing file through the overlay and writes to it");
        if (out && strstr(out, "error"))
            printf("# %s\n", out);
        free(out);
        unsigned char got[16];
        fd = open(base, O_RDONLY);
        ok(fd >= 0 && pread(fd, got, sizeof(got), 2 << 20) == sizeof(got) && got[0] == 0 &&
               got[15] == 0,
           "the backing file is untouched");
        close(fd);
        ok(stat(ov, &st) == 0 && st.st_size > 4 * 65536, "the write landed in the overlay");
        const char *again[] = { "read -P 0xc3 2M 64k", "read -P 0x5a 1M 64k", NULL };
        out = run_qemu_io(ov, again);
        ok(out && !strstr(out, "Pattern verification failed") && !strstr(out, "error"),
           "opened again, the overlay still has both");
        free(out);
    }
    e2b_rm_rf(dir, NULL);
    free(base), free(ov);
    return tap_done();
}
