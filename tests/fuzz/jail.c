/* jail.c - a scratch root for harnesses whose code under test writes files.
 *
 * The layer applier and envd take paths from their input; a bug there could
 * write anywhere on the machine running the fuzzer. So the harness moves
 * into a mount namespace of its own and chroots into a size-limited tmpfs
 * first: the worst a bug can do is fill that tmpfs, and a harness can check
 * that nothing appeared outside the directory the input was meant to touch.
 */
#include "fuzz.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

_Noreturn void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: broken invariant: %s\n", file, line, what);
    abort();
}

static int write_map(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

int fuzz_jail_enter(unsigned size_mb)
{
    /* libFuzzer reads and writes its corpus and artifacts by the paths it
     * was given, relative to where it started, after the harness's
     * initializer ran: the working directory stays there, outside the jail.
     * Harnesses and the code they drive use absolute paths only. */
    int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (here < 0)
        return -1;
    if (unshare(CLONE_NEWNS) < 0) {
        /* not root: be root of a user namespace of our own */
        char map[64];
        uid_t uid = geteuid();
        gid_t gid = getegid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
            return -1;
        snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
        if (write_map("/proc/self/uid_map", map) < 0 || write_map("/proc/self/setgroups", "deny") < 0)
            return -1;
        snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
        if (write_map("/proc/self/gid_map", map) < 0)
            return -1;
    }
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%um,mode=755", size_mb);
    /* over /tmp, which every machine has, in this namespace only: nothing
     * is made on the machine's disks, not even a mount point */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("e2b-fuzz", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
        return -1;
    /* /proc read-only: LeakSanitizer reads the threads and maps from it,
     * and nothing a harness runs may write the machine's settings there */
    if (mkdir("/tmp/proc", 0555) < 0 || mount("/proc", "/tmp/proc", NULL, MS_BIND | MS_REC, NULL) < 0 ||
        mount(NULL, "/tmp/proc", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return -1;
    if (chdir("/tmp") < 0 || chroot(".") < 0 || fchdir(here) < 0)
        return -1;
    close(here);
    return 0;
}

static void wipe_at(int dfd)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            continue;
        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            fchmod(sub, 0700); /* a directory the input made unwritable */
            wipe_at(sub);
        }
        unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

void fuzz_jail_wipe(const char *const *keep)
{
    DIR *d = opendir("/");
    FUZZ_ASSERT(d != NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        bool kept = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, "proc");
        for (const char *const *k = keep; k && *k && !kept; k++)
            kept = !strcmp(de->d_name, *k);
        if (kept || unlinkat(dirfd(d), de->d_name, 0) == 0)
            continue;
        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            fchmod(sub, 0700);
            wipe_at(sub);
        }
        unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

void fuzz_write_file(const char *path, const char *text, unsigned mode)
{
    char *p = strdup(path);
    FUZZ_ASSERT(p != NULL);
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    free(p);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    FUZZ_ASSERT(fd >= 0);
    FUZZ_ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

/* ---- snapshots of the jail ---- */

static struct fuzz_tree *snap;
static const char *const *snap_skip, *const *snap_loose;

static bool listed(const char *path, const char *const *list)
{
    for (const char *const *p = list; p && *p; p++)
        if (!strcmp(path, *p))
            return true;
    return false;
}

static int snap_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    if (!strcmp(path, "/proc") || listed(path, snap_skip))
        return FTW_SKIP_SUBTREE;
    char target[512] = "";
    if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
    }
    bool loose = listed(path, snap_loose);
    char *line;
    FUZZ_ASSERT(asprintf(&line, "%s mode=%o uid=%u gid=%u size=%lld nlink=%lu ino=%lu mtime=%lld.%09ld "
                                "ctime=%lld.%09ld -> %s",
                         path, (unsigned)st->st_mode, (unsigned)st->st_uid, (unsigned)st->st_gid,
                         (long long)st->st_size, loose ? 0 : (unsigned long)st->st_nlink, (unsigned long)st->st_ino,
                         (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, loose ? 0 : (long long)st->st_ctim.tv_sec,
                         loose ? 0 : st->st_ctim.tv_nsec, target) >= 0);
    snap->lines = realloc(snap->lines, (snap->n + 1) * sizeof(char *));
    FUZZ_ASSERT(snap->lines != NULL);
    snap->lines[snap->n++] = line;
    return FTW_CONTINUE;
}

static int cmp_lines(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void fuzz_tree_snapshot(struct fuzz_tree *t, const char *const *skip, const char *const *loose)
{
    *t = (struct fuzz_tree){0};
    snap = t;
    snap_skip = skip;
    snap_loose = loose;
    FUZZ_ASSERT(nftw("/", snap_one, 16, FTW_PHYS | FTW_MOUNT | FTW_ACTIONRETVAL) == 0);
    if (t->n)
        qsort(t->lines, t->n, sizeof(char *), cmp_lines);
    snap = NULL;
}

void fuzz_tree_assert_same(const struct fuzz_tree *a, const struct fuzz_tree *b)
{
    size_t i = 0, j = 0;
    bool same = true;
    while (i < a->n || j < b->n) {
        int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->lines[i], b->lines[j]);
        if (c == 0) {
            i++, j++;
            continue;
        }
        same = false;
        if (c < 0)
            fprintf(stderr, "jail: before: %s\n", a->lines[i++]);
        else
            fprintf(stderr, "jail: after:  %s\n", b->lines[j++]);
    }
    FUZZ_ASSERT(same);
}

void fuzz_tree_release(struct fuzz_tree *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->lines[i]);
    free(t->lines);
    *t = (struct fuzz_tree){0};
}
