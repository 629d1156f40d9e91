/* build-user.c - /etc/passwd, /etc/group, /etc/shadow edits in a root tree. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "build-user.h"
#include "fsutil.h"
#include "strbuf.h"
#include "util.h"

/* Open a path inside root as if root were `/`. */
static int open_in_root(const char *root, const char *path, int flags, mode_t mode)
{
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return -1;
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, rfd, path, &how, sizeof(how));
}

static int mkdir_in_root(const char *root, const char *dir, const char *name, mode_t mode)
{
    _cleanup_close_ int dfd = open_in_root(root, dir, O_PATH | O_DIRECTORY, 0);
    if (dfd < 0)
        return -1;
    if (mkdirat(dfd, name, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Read etc/<name>; a missing file reads as empty. */
static int read_etc(const char *root, const char *name, char **ret, struct e2b_error **err)
{
    _cleanup_free_ char *path = xasprintf("/etc/%s", name);
    _cleanup_close_ int fd = open_in_root(root, path, O_RDONLY | O_NOFOLLOW, 0);
    struct strbuf b = STRBUF_INIT;
    strbuf_init(&b);
    if (fd < 0) {
        if (errno != ENOENT) {
            strbuf_release(&b);
            return e2b_error_sys(err, errno, "%s in the template root", path);
        }
        *ret = strbuf_detach(&b, NULL);
        return 0;
    }
    char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        strbuf_add(&b, buf, (size_t)n);
    if (n < 0) {
        strbuf_release(&b);
        return e2b_error_sys(err, errno, "read %s in the template root", path);
    }
    *ret = strbuf_detach(&b, NULL);
    return 0;
}

static int write_etc(const char *root, const char *name, const char *data, mode_t mode,
                     struct e2b_error **err)
{
    if (mkdir_in_root(root, "/", "etc", 0755) < 0)
        return e2b_error_sys(err, errno, "mkdir /etc in the template root");
    _cleanup_close_ int dfd = open_in_root(root, "/etc", O_PATH | O_DIRECTORY, 0);
    if (dfd < 0)
        return e2b_error_sys(err, errno, "/etc in the template root");
    _cleanup_free_ char *tmp = xasprintf(".%s.e2b-tmp", name);
    unlinkat(dfd, tmp, 0);
    _cleanup_close_ int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return e2b_error_sys(err, errno, "write /etc/%s in the template root", name);
    int w = e2b_write_all(fd, data, strlen(data));
    if (w < 0) {
        unlinkat(dfd, tmp, 0);
        return e2b_error_sys(err, -w, "write /etc/%s in the template root", name);
    }
    if (fchmod(fd, mode) < 0 || renameat(dfd, tmp, dfd, name) < 0) {
        int e = errno;
        unlinkat(dfd, tmp, 0);
        return e2b_error_sys(err, e, "replace /etc/%s in the template root", name);
    }
    return 0;
}

/* Find a line whose first field is name (or, if by_id, whose third field
 * is the number). Returns the line (caller frees) or NULL. */
static char *find_entry(const char *db, const char *key, int field)
{
    const char *s = db;
    size_t klen = strlen(key);
    while (*s) {
        const char *eol = strchrnul(s, '\n');
        const char *f = s;
        for (int i = 0; i < field && f < eol; i++) {
            f = memchr(f, ':', (size_t)(eol - f));
            if (!f)
                break;
            f++;
        }
        if (f && f < eol && (size_t)(eol - f) >= klen && !strncmp(f, key, klen) &&
            (f[klen] == ':' || f + klen == eol))
            return xstrndup(s, (size_t)(eol - s));
        s = *eol ? eol + 1 : eol;
    }
    return NULL;
}

static long field_num(const char *line, int field)
{
    const char *f = line;
    for (int i = 0; i < field; i++) {
        f = strchr(f, ':');
        if (!f)
            return -1;
        f++;
    }
    char *e;
    long v = strtol(f, &e, 10);
    return (e == f || (*e && *e != ':')) ? -1 : v;
}

static bool is_number(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int e2b_root_lookup_uid(const char *root, const char *user, uid_t *uid, gid_t *gid,
                        struct e2b_error **err)
{
    _cleanup_free_ char *db = NULL;
    if (read_etc(root, "passwd", &db, err) < 0)
        return -1;
    _cleanup_free_ char *line = find_entry(db, user, is_number(user) ? 2 : 0);
    if (!line) {
        if (is_number(user)) {
            *uid = (uid_t)strtoul(user, NULL, 10);
            *gid = *uid;
            return 0;
        }
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "user %s: not in the image's /etc/passwd", user);
    }
    *uid = (uid_t)field_num(line, 2);
    *gid = (gid_t)field_num(line, 3);
    return 0;
}

int e2b_root_lookup_gid(const char *root, const char *group, gid_t *gid, struct e2b_error **err)
{
    if (is_number(group)) {
        *gid = (gid_t)strtoul(group, NULL, 10);
        return 0;
    }
    _cleanup_free_ char *db = NULL;
    if (read_etc(root, "group", &db, err) < 0)
        return -1;
    _cleanup_free_ char *line = find_entry(db, group, 0);
    if (!line)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "group %s: not in the image's /etc/group", group);
    *gid = (gid_t)field_num(line, 2);
    return 0;
}

static bool id_used(const char *db, long id, int field)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%ld", id);
    _cleanup_free_ char *l = find_entry(db, buf, field);
    return l != NULL;
}

static void append_line(char **db, const char *line)
{
    struct strbuf b = STRBUF_INIT;
    strbuf_init(&b);
    strbuf_addstr(&b, *db);
    if (b.len && b.buf[b.len - 1] != '\n')
        strbuf_addch(&b, '\n');
    strbuf_addstr(&b, line);
    strbuf_addch(&b, '\n');
    free(*db);
    *db = strbuf_detach(&b, NULL);
}

/* Add name as a member of group (a `group:x:gid:a,b` line). */
static bool add_member(char **db, const char *group, const char *name)
{
    _cleanup_free_ char *line = find_entry(*db, group, 0);
    if (!line)
        return false;
    const char *start = strstr(*db, line);
    while (start && start != *db && start[-1] != '\n')
        start = strstr(start + 1, line);
    if (!start)
        return false;
    const char *members = strrchr(line, ':') + 1;
    /* already a member? */
    _cleanup_free_ char *m = xasprintf(",%s,", members);
    _cleanup_free_ char *needle = xasprintf(",%s,", name);
    if (strstr(m, needle))
        return true;
    struct strbuf b = STRBUF_INIT;
    strbuf_init(&b);
    strbuf_add(&b, *db, (size_t)(start - *db));
    strbuf_addstr(&b, line);
    if (*members)
        strbuf_addch(&b, ',');
    strbuf_addstr(&b, name);
    strbuf_addstr(&b, start + strlen(line));
    free(*db);
    *db = strbuf_detach(&b, NULL);
    return true;
}

static int copy_skel(const char *root, int homefd, uid_t uid, gid_t gid)
{
    _cleanup_close_ int sfd = open_in_root(root, "/etc/skel", O_RDONLY | O_DIRECTORY, 0);
    if (sfd < 0)
        return 0;
    DIR *d = fdopendir(dup(sfd));
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        _cleanup_close_ int in = openat(sfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        _cleanup_close_ int out = openat(homefd, de->d_name,
                                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                         st.st_mode & 07777);
        if (out < 0)
            continue;
        char buf[8192];
        ssize_t n;
        while ((n = read(in, buf, sizeof(buf))) > 0)
            if (e2b_write_all(out, buf, (size_t)n) < 0)
                break;
        if (fchown(out, uid, gid) < 0) {
            /* an unprivileged build keeps the files as they are */
        }
    }
    closedir(d);
    return 0;
}

int e2b_root_add_user(const char *root, const char *name, struct e2b_user_info *ret,
                      struct e2b_error **err)
{
    return e2b_root_add_user_sudo(root, name, true, ret, err);
}

char *e2b_root_lookup_home(const char *root, const char *user)
{
    _cleanup_free_ char *db = NULL;
    if (!user || !*user)
        user = "root";
    if (read_etc(root, "passwd", &db, NULL) < 0)
        return NULL;
    _cleanup_free_ char *line = find_entry(db, user, is_number(user) ? 2 : 0);
    const char *f = line;
    for (int i = 0; f && i < 5; i++)
        f = strchr(f, ':') ? strchr(f, ':') + 1 : NULL;
    if (!f || *f != '/')
        return NULL;
    return xstrndup(f, strcspn(f, ":"));
}

int e2b_root_add_user_sudo(const char *root, const char *name, bool sudo, struct e2b_user_info *ret,
                           struct e2b_error **err)
{
    _cleanup_free_ char *passwd = NULL, *group = NULL, *shadow = NULL;
    struct e2b_user_info info = {0};
    if (read_etc(root, "passwd", &passwd, err) < 0 || read_etc(root, "group", &group, err) < 0 ||
        read_etc(root, "shadow", &shadow, err) < 0)
        return -1;

    _cleanup_free_ char *existing = find_entry(passwd, name, 0);
    if (existing) {
        info.uid = (uid_t)field_num(existing, 2);
        info.gid = (gid_t)field_num(existing, 3);
    } else {
        long uid = 1000;
        while (id_used(passwd, uid, 2) || id_used(group, uid, 2))
            uid++;
        _cleanup_free_ char *gline = find_entry(group, name, 0);
        long gid = gline ? field_num(gline, 2) : uid;
        _cleanup_close_ int bash = open_in_root(root, "/bin/bash", O_PATH, 0);
        const char *shell = bash >= 0 ? "/bin/bash" : "/bin/sh";
        _cleanup_free_ char *pl = xasprintf("%s:x:%ld:%ld::/home/%s:%s", name, uid, gid, name, shell);
        append_line(&passwd, pl);
        if (!gline) {
            _cleanup_free_ char *gl = xasprintf("%s:x:%ld:", name, gid);
            append_line(&group, gl);
        }
        _cleanup_free_ char *sh = find_entry(shadow, name, 0);
        if (!sh) {
            _cleanup_free_ char *sl = xasprintf("%s:!:%ld:0:99999:7:::", name, e2b_wall_ms() / 86400000);
            append_line(&shadow, sl);
        }
        info.uid = (uid_t)uid;
        info.gid = (gid_t)gid;
        info.created = true;
    }
    /* E2B adds the user to sudo (Debian) or wheel (RHEL) */
    if (sudo && !add_member(&group, "sudo", name))
        add_member(&group, "wheel", name);

    if (write_etc(root, "passwd", passwd, 0644, err) < 0 || write_etc(root, "group", group, 0644, err) < 0 ||
        write_etc(root, "shadow", shadow, 0640, err) < 0)
        return -1;

    if (mkdir_in_root(root, "/", "home", 0755) < 0 || mkdir_in_root(root, "/home", name, 0755) < 0)
        return e2b_error_sys(err, errno, "make /home/%s in the template root", name);
    _cleanup_free_ char *home = xasprintf("/home/%s", name);
    _cleanup_close_ int hfd = open_in_root(root, home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (hfd < 0)
        return e2b_error_sys(err, errno, "open %s in the template root", home);
    if (info.created)
        copy_skel(root, hfd, info.uid, info.gid);
    if (fchown(hfd, info.uid, info.gid) < 0 && errno != EPERM)
        return e2b_error_sys(err, errno, "chown %s", home);

    _cleanup_close_ int sudoers = sudo ? open_in_root(root, "/etc/sudoers.d", O_PATH | O_DIRECTORY, 0) : -1;
    if (sudoers >= 0) {
        _cleanup_free_ char *rule = xasprintf("%s ALL=(ALL:ALL) NOPASSWD: ALL\n", name);
        _cleanup_free_ char *fname = xasprintf("%s-nopasswd", name);
        _cleanup_close_ int fd = openat(sudoers, fname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0440);
        if (fd < 0 || e2b_write_all(fd, rule, strlen(rule)) < 0 || fchmod(fd, 0440) < 0)
            return e2b_error_sys(err, errno, "write /etc/sudoers.d/%s", fname);
    }
    if (ret)
        *ret = info;
    return 0;
}

int e2b_root_write_marker(const char *root, const char *content, struct e2b_error **err)
{
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return e2b_error_sys(err, errno, "%s", root);
    unlinkat(rfd, ".e2b", 0);
    _cleanup_close_ int fd = openat(rfd, ".e2b", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || e2b_write_all(fd, content, strlen(content)) < 0)
        return e2b_error_sys(err, errno, "write /.e2b");
    return 0;
}
