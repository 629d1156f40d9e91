/* ext4.c - see ext4.h */
#include "ext4.h"
#include "strbuf.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define BLOCK 4096ULL

static struct e2b_tree_usage walk_usage;
static dev_t walk_dev;

static int count_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (st->st_dev != walk_dev && type == FTW_D)
        return FTW_SKIP_SUBTREE;
    walk_usage.inodes++;
    if (S_ISREG(st->st_mode))
        walk_usage.bytes += (st->st_size + BLOCK - 1) / BLOCK * BLOCK;
    else if (S_ISDIR(st->st_mode))
        walk_usage.bytes += BLOCK;
    else if (S_ISLNK(st->st_mode) && st->st_size > 59) /* longer targets need a block */
        walk_usage.bytes += BLOCK;
    return FTW_CONTINUE;
}

int e2b_tree_usage(const char *root, struct e2b_tree_usage *ret, struct e2b_error **err)
{
    struct stat st;
    if (lstat(root, &st) < 0)
        return e2b_error_sys(err, errno, "cannot read '%s'", root);
    memset(&walk_usage, 0, sizeof(walk_usage));
    walk_dev = st.st_dev;
    if (nftw(root, count_one, 64, FTW_PHYS | FTW_ACTIONRETVAL) < 0)
        return e2b_error_sys(err, errno, "cannot walk '%s'", root);
    *ret = walk_usage;
    return 0;
}

/* mke2fs with argv (argv[slot] is left for the file) into a temp file
 * renamed to image once it succeeded. */
static int run_mke2fs(const char **argv, size_t slot, const char *image, const char *what,
                      struct e2b_error **err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp.%ld", image, (long)getpid());
    unlink(tmp);
    argv[slot] = tmp;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "cannot run mke2fs");
    pid_t pid = fork();
    if (pid < 0)
        return e2b_error_sys(err, errno, "cannot run mke2fs");
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        execvp("mke2fs", (char **)argv);
        dprintf(2, "cannot run mke2fs: %s\n", strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    struct strbuf out = STRBUF_INIT;
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && out.len < 8192)
            strbuf_add(&out, buf, (size_t)n);
    close(pipefd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        strbuf_rtrim(&out);
        unlink(tmp);
        int code = strstr(out.buf, "No space") || strstr(out.buf, "Could not allocate")
                       ? E2B_ERR_NOSPACE : E2B_ERR_GENERIC;
        e2b_error_set(err, code, "mke2fs failed making '%s' %s: %s", image, what,
                      out.len ? out.buf : "no output");
        strbuf_release(&out);
        return -1;
    }
    strbuf_release(&out);
    if (rename(tmp, image) < 0) {
        int e = errno;
        unlink(tmp);
        return e2b_error_sys(err, e, "cannot write '%s'", image);
    }
    return 0;
}

int e2b_ext4_from_dir(const char *root, const char *image, uint64_t headroom_mb,
                      uint64_t *ret_size_mb, struct e2b_error **err)
{
    struct e2b_tree_usage u;
    if (e2b_tree_usage(root, &u, err) < 0)
        return -1;
    /* Metadata overhead: inode tables (256 B each, with 1.5x spare inodes),
     * bitmaps and group descriptors (~3%), plus a 16 MiB floor for small trees. */
    uint64_t inodes = u.inodes + u.inodes / 2 + 1024;
    uint64_t bytes = u.bytes + inodes * 256 + u.bytes / 32 + (16ULL << 20);
    uint64_t size_mb = (bytes + (1ULL << 20) - 1) / (1ULL << 20) + headroom_mb;

    _cleanup_free_ char *size_arg = xasprintf("%lluM", (unsigned long long)size_mb);
    _cleanup_free_ char *inode_arg = xasprintf("%llu", (unsigned long long)inodes);
    const char *argv[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0",
                          "-N", inode_arg, "-L", "e2b-rootfs", "-E", "root_owner=0:0",
                          "-d", root, NULL, size_arg, NULL};
    _cleanup_free_ char *what = xasprintf("from '%s'", root);
    if (run_mke2fs(argv, 17, image, what, err) < 0)
        return -1;
    if (ret_size_mb)
        *ret_size_mb = size_mb;
    return 0;
}

int e2b_ext4_blank(const char *image, uint64_t size_mb, struct e2b_error **err)
{
    _cleanup_free_ char *size_arg = xasprintf("%lluM", (unsigned long long)size_mb);
    /* no journal (the layer lives as long as its sandbox) and inode tables
     * left for the kernel: a few MiB written, the rest a hole */
    const char *argv[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-O", "^has_journal",
                          "-E", "lazy_itable_init=1,root_owner=0:0", "-L", "e2b-disk", NULL, size_arg, NULL};
    return run_mke2fs(argv, 15, image, "empty", err);
}
