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
