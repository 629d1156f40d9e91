/* build.c - Dockerfile steps into a template root, then the store.
 *
 * The instruction reader here is the interim one (line continuations,
 * comments, JSON exec form, $VAR/${VAR} expansion); lib/dockerfile takes its
 * place when it lands.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build-context.h"
#include "build-user.h"
#include "build.h"
#include "ext4.h"
#include "fsutil.h"
#include "sandbox-seccomp.h"
#include "strbuf.h"
#include "template-store.h"
#include "util.h"

struct instr {
    char *cmd;     /* upper case */
    char *rest;    /* raw arguments (continuations joined) */
    int line;
};

struct state {
    const struct e2b_build_opts *o;
    char *root;
    json_t *env;      /* object */
    json_t *args;     /* object: ARG values */
    json_t *labels, *ports;
    json_t *cmd, *entrypoint;
    char *workdir, *user, *stopsignal;
    struct e2b_ignore ig;
};

static void progress(const struct e2b_build_opts *o, const char *fmt, ...) _printf_(2, 3);
static void progress(const struct e2b_build_opts *o, const char *fmt, ...)
{
    if (!o->progress)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) >= 0)
        o->progress(o->data, s);
    va_end(ap);
    free(s);
}

static void instrs_free(struct instr *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].cmd);
        free(v[i].rest);
    }
    free(v);
}

static int parse_file(const char *text, struct instr **ret, size_t *ret_n, struct e2b_error **err)
{
    struct instr *v = NULL;
    size_t n = 0;
    const char *s = text;
    int lineno = 0;
    while (*s) {
        lineno++;
        const char *eol = strchrnul(s, '\n');
        _cleanup_free_ char *line = xstrndup(s, (size_t)(eol - s));
        s = *eol ? eol + 1 : eol;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' || *p == '\r')
            continue;
        int start = lineno;
        char *w = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        _cleanup_free_ char *word = xstrndup(w, (size_t)(p - w));
        for (char *c = word; *c; c++) {
            if (*c >= 'a' && *c <= 'z')
                *c = (char)(*c - 32);
            else if (*c < 'A' || *c > 'Z') {
                instrs_free(v, n);
                return e2b_error_set(err, E2B_ERR_INVALID, "Dockerfile:%d:%d: not an instruction: %s",
                                     start, (int)(w - line) + 1, word);
            }
        }
        struct strbuf b = STRBUF_INIT;
        strbuf_init(&b);
        strbuf_addstr(&b, p);
        /* continuation lines */
        for (;;) {
            strbuf_rtrim(&b);
            if (!b.len || b.buf[b.len - 1] != '\\' || !*s)
                break;
            strbuf_setlen(&b, b.len - 1);
            for (;;) {
                lineno++;
                const char *e2 = strchrnul(s, '\n');
                _cleanup_free_ char *l2 = xstrndup(s, (size_t)(e2 - s));
                s = *e2 ? e2 + 1 : e2;
                const char *q = l2;
                while (*q == ' ' || *q == '\t')
                    q++;
                if (*q == '#' && *s)
                    continue;
                strbuf_addch(&b, ' ');
                strbuf_addstr(&b, l2);
                break;
            }
        }
        /* heredocs (`<<EOF`, `<<-EOF`, quoted): the body lines join the
         * instruction, so a shell-form RUN hands them to the shell as is */
        const char *h = strstr(b.buf, "<<");
        if (h && h[2] != '<' && !strcmp(word, "RUN")) {
            const char *t = h + 2;
            if (*t == '-')
                t++;
            if (*t == '"' || *t == '\'')
                t++;
            const char *te = t;
            while (*te && *te != ' ' && *te != '"' && *te != '\'' && *te != ';' && *te != '\n')
                te++;
            _cleanup_free_ char *term = xstrndup(t, (size_t)(te - t));
            bool closed = false;
            while (*term && *s) {
                lineno++;
                const char *e2 = strchrnul(s, '\n');
                _cleanup_free_ char *l2 = xstrndup(s, (size_t)(e2 - s));
                s = *e2 ? e2 + 1 : e2;
                strbuf_addch(&b, '\n');
                strbuf_addstr(&b, l2);
                const char *q = l2;
                while (*q == '\t')
                    q++;
                if (!strcmp(q, term)) {
                    closed = true;
                    break;
                }
            }
            if (*term && !closed) {
                strbuf_release(&b);
                instrs_free(v, n);
                return e2b_error_set(err, E2B_ERR_INVALID, "Dockerfile:%d:%d: heredoc %s is never closed",
                                     start, (int)(h - b.buf) + (int)(p - line) + 1, term);
            }
        }
        char *rest = strbuf_detach(&b, NULL);
        char *r = rest;
        while (*r == ' ' || *r == '\t')
            r++;
        static const char *known[] = {"FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "LABEL",
                                      "CMD", "ENTRYPOINT", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
                                      "VOLUME", "ONBUILD", "MAINTAINER", NULL};
        bool ok = false;
        for (size_t k = 0; known[k]; k++)
            ok = ok || !strcmp(known[k], word);
        if (!ok || (!*r && strcmp(word, "ONBUILD"))) {
            free(rest);
            instrs_free(v, n);
            return e2b_error_set(err, E2B_ERR_INVALID, "Dockerfile:%d:%d: %s %s", start,
                                 (int)(w - line) + 1, ok ? "missing arguments for" : "unknown instruction",
                                 word);
        }
        v = xrealloc(v, (n + 1) * sizeof(*v));
        v[n].cmd = xstrdup(word);
        v[n].rest = xstrdup(r);
        v[n].line = start;
        n++;
        free(rest);
    }
    if (!n || strcmp(v[0].cmd, "FROM") != 0) {
        bool arg_first = n && !strcmp(v[0].cmd, "ARG");
        if (!arg_first) {
            int l = n ? v[0].line : 1;
            instrs_free(v, n);
            return e2b_error_set(err, E2B_ERR_INVALID, "Dockerfile:%d:1: the first instruction must be FROM", l);
        }
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

/* $VAR, ${VAR}, ${VAR:-default}; \$ escapes. */
static char *expand(const char *s, json_t *vars)
{
    struct strbuf b = STRBUF_INIT;
    strbuf_init(&b);
    while (*s) {
        if (*s == '\\' && s[1] == '$') {
            strbuf_addch(&b, '$');
            s += 2;
        } else if (*s == '$' && (s[1] == '{' || s[1] == '_' || (s[1] >= 'A' && s[1] <= 'Z') ||
                                 (s[1] >= 'a' && s[1] <= 'z'))) {
            const char *n = s + 1, *e;
            char *name, *def = NULL;
            if (*n == '{') {
                e = strchr(n, '}');
                if (!e) {
                    strbuf_addch(&b, *s++);
                    continue;
                }
                name = xstrndup(n + 1, (size_t)(e - n - 1));
                char *c = strstr(name, ":-");
                if (c) {
                    *c = '\0';
                    def = c + 2;
                }
                e++;
            } else {
                e = n;
                while (*e == '_' || (*e >= 'A' && *e <= 'Z') || (*e >= 'a' && *e <= 'z') ||
                       (*e >= '0' && *e <= '9'))
                    e++;
                name = xstrndup(n, (size_t)(e - n));
            }
            const char *val = e2b_json_str(vars, name);
            if (val && *val)
                strbuf_addstr(&b, val);
            else if (def)
                strbuf_addstr(&b, def);
            free(name);
            s = e;
        } else {
            strbuf_addch(&b, *s++);
        }
    }
    return strbuf_detach(&b, NULL);
}

/* Split on blanks with "..." and '...' quoting. */
static char **split_words(const char *s)
{
    char **v = NULL;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        struct strbuf b = STRBUF_INIT;
        strbuf_init(&b);
        while (*s && *s != ' ' && *s != '\t') {
            if (*s == '"' || *s == '\'') {
                char q = *s++;
                while (*s && *s != q) {
                    if (q == '"' && *s == '\\' && s[1])
                        s++;
                    strbuf_addch(&b, *s++);
                }
                if (*s)
                    s++;
            } else {
                strbuf_addch(&b, *s++);
            }
        }
        char *w = strbuf_detach(&b, NULL);
        v = e2b_strv_push(v, w);
        free(w);
    }
    if (!v)
        v = xcalloc(1, sizeof(char *));
    return v;
}

/* JSON exec form or shell form wrapped in /bin/sh -c. */
static json_t *command_form(const char *rest)
{
    if (rest[0] == '[') {
        json_error_t je;
        json_t *j = json_loads(rest, 0, &je);
        if (j && json_is_array(j))
            return j;
        json_decref(j);
    }
    return json_pack("[sss]", "/bin/sh", "-c", rest);
}

static json_t *vars_of(struct state *st)
{
    json_t *v = json_deep_copy(st->args);
    json_object_update(v, st->env);
    return v;
}

/* Resolve dest inside the root; refuses a parent that resolves outside it. */
static char *dest_in_root(struct state *st, const char *dest, bool is_dir_hint, const char *base,
                          struct e2b_error **err)
{
    _cleanup_free_ char *abs = dest[0] == '/' ? xstrdup(dest) : e2b_path_join(st->workdir, dest);
    _cleanup_free_ char *clean = e2b_context_clean(abs, err);
    if (!clean)
        return NULL;
    char *full = e2b_path_join(st->root, clean);
    if (is_dir_hint && base) {
        char *f2 = e2b_path_join(full, base);
        free(full);
        full = f2;
    }
    /* make parents, then check where they really are */
    char *parent = xstrdup(full);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    if (e2b_mkdir_p(parent, 0755, err) < 0) {
        free(parent);
        free(full);
        return NULL;
    }
    char *rp = realpath(parent, NULL), *rr = realpath(st->root, NULL);
    bool inside = rp && rr && e2b_str_has_prefix(rp, rr) && (rp[strlen(rr)] == '/' || !rp[strlen(rr)]);
    free(rp);
    free(rr);
    free(parent);
    if (!inside) {
        free(full);
        e2b_error_set(err, E2B_ERR_PERMISSION, "%s: leads outside the image root", dest);
        return NULL;
    }
    return full;
}

static int copy_tree(struct state *st, const char *src, const char *rel, const char *dst, uid_t uid,
                     gid_t gid, bool own, long mode, bool ignore, struct e2b_error **err)
{
    if (ignore && strcmp(rel, ".") && e2b_ignore_match(&st->ig, rel))
        return 0;
    struct stat s;
    if (lstat(src, &s) < 0)
        return e2b_error_sys(err, errno, "COPY %s", rel);
    if (S_ISDIR(s.st_mode)) {
        if (mkdir(dst, s.st_mode & 07777) < 0 && errno != EEXIST)
            return e2b_error_sys(err, errno, "mkdir %s", dst);
        struct stat ds;
        if (lstat(dst, &ds) < 0 || !S_ISDIR(ds.st_mode))
            return e2b_error_set(err, E2B_ERR_INVALID, "COPY: %s is not a directory in the image", rel);
        DIR *d = opendir(src);
        if (!d)
            return e2b_error_sys(err, errno, "%s", src);
        struct dirent *de;
        int r = 0;
        while (r == 0 && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char *s2 = e2b_path_join(src, de->d_name), *d2 = e2b_path_join(dst, de->d_name);
            char *r2 = strcmp(rel, ".") ? e2b_path_join(rel, de->d_name) : xstrdup(de->d_name);
            r = copy_tree(st, s2, r2, d2, uid, gid, own, mode, ignore, err);
            free(s2);
            free(d2);
            free(r2);
        }
        closedir(d);
        if (r < 0)
            return r;
    } else if (S_ISLNK(s.st_mode)) {
        char target[4096];
        ssize_t n = readlink(src, target, sizeof(target) - 1);
        if (n < 0)
            return e2b_error_sys(err, errno, "%s", src);
        target[n] = '\0';
        unlink(dst);
        if (symlink(target, dst) < 0)
            return e2b_error_sys(err, errno, "symlink %s", dst);
        if (lchown(dst, own ? uid : s.st_uid, own ? gid : s.st_gid) < 0 && errno != EPERM)
            return e2b_error_sys(err, errno, "chown %s", dst);
        return 0;
    } else if (S_ISREG(s.st_mode)) {
        _cleanup_close_ int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
            return e2b_error_sys(err, errno, "%s", src);
        struct stat ds;
        if (lstat(dst, &ds) == 0 && !S_ISREG(ds.st_mode) && !S_ISDIR(ds.st_mode))
            unlink(dst);
        _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
            return e2b_error_sys(err, errno, "COPY to %s", dst);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof(buf))) > 0) {
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(out, buf + off, (size_t)(n - off));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    return e2b_error_sys(err, w < 0 ? errno : ENOSPC, "write %s", dst);
                off += w;
            }
        }
        if (n < 0)
            return e2b_error_sys(err, errno, "read %s", src);
    } else {
        return 0; /* devices, fifos and sockets of the context are skipped */
    }
    if (chown(dst, own ? uid : 0, own ? gid : 0) < 0 && errno != EPERM)
        return e2b_error_sys(err, errno, "chown %s", dst);
    if (chmod(dst, mode >= 0 ? (mode_t)mode : (s.st_mode & 07777)) < 0)
        return e2b_error_sys(err, errno, "chmod %s", dst);
    return 0;
}

static int do_copy(struct state *st, const char *rest, bool add, struct e2b_error **err)
{
    _cleanup_free_ char *x = expand(rest, json_object_size(st->args) ? st->args : st->env);
    char **w = split_words(x);
    const char *chown_s = NULL, *from = NULL;
    long mode = -1;
    size_t i = 0, n = e2b_strv_len(w);
    int r = 0;
    for (; i < n && e2b_str_has_prefix(w[i], "--"); i++) {
        if (e2b_str_has_prefix(w[i], "--chown="))
            chown_s = w[i] + 8;
        else if (e2b_str_has_prefix(w[i], "--chmod="))
            mode = strtol(w[i] + 8, NULL, 8);
        else if (e2b_str_has_prefix(w[i], "--from="))
            from = w[i] + 7;
    }
    if (n - i < 2) {
        e2b_strv_free(w);
        return e2b_error_set(err, E2B_ERR_INVALID, "%s needs a source and a destination", add ? "ADD" : "COPY");
    }
    if (from) {
        e2b_strv_free(w);
        return e2b_error_set(err, E2B_ERR_INVALID, "COPY --from is not supported yet");
    }
    uid_t uid = 0;
    gid_t gid = 0;
    if (chown_s) {
        _cleanup_free_ char *u = xstrdup(chown_s);
        char *g = strchr(u, ':');
        if (g)
            *g++ = '\0';
        if (e2b_root_lookup_uid(st->root, u, &uid, &gid, err) < 0 ||
            (g && e2b_root_lookup_gid(st->root, g, &gid, err) < 0)) {
            e2b_strv_free(w);
            return -1;
        }
    }
    const char *dest = w[n - 1];
    size_t nsrc = n - 1 - i;
    bool dir_dest = e2b_str_has_suffix(dest, "/") || nsrc > 1;
    for (size_t k = i; r == 0 && k < n - 1; k++) {
        _cleanup_free_ char *rel = e2b_context_clean(w[k], err);
        if (!rel) {
            r = e2b_error_wrap(err, "%s", add ? "ADD" : "COPY");
            break;
        }
        _cleanup_free_ char *src = e2b_path_join(st->o->context, rel);
        struct stat s;
        if (lstat(src, &s) < 0 || (strcmp(rel, ".") && e2b_ignore_match(&st->ig, rel))) {
            r = e2b_error_set(err, E2B_ERR_NOT_FOUND, "%s %s: not in the build context", add ? "ADD" : "COPY", w[k]);
            break;
        }
        const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
        _cleanup_free_ char *dst = dest_in_root(st, dest, dir_dest && !S_ISDIR(s.st_mode), base, err);
        if (!dst) {
            r = -1;
            break;
        }
        /* a file copied onto an existing directory ("COPY f ." after WORKDIR) goes into it */
        struct stat ds;
        if (!dir_dest && !S_ISDIR(s.st_mode) && stat(dst, &ds) == 0 && S_ISDIR(ds.st_mode)) {
            free(dst);
            if (!(dst = dest_in_root(st, dest, true, base, err))) {
                r = -1;
                break;
            }
        }
        r = copy_tree(st, src, rel, dst, uid, gid, chown_s != NULL, mode, true, err);
    }
    e2b_strv_free(w);
    return r;
}

/* The RUN step's process (pid 1 of new mount and pid namespaces, still the
 * host's root): pivot into the stage root (chroot alone can be climbed out
 * of by root), give it /proc and a minimal /dev of its own, and drop what a
 * container's root has no need for, as the sandbox runtime does. Messages
 * go to stderr (the step's output). */
static int enter_build_root(struct state *st)
{
    static const struct {
        const char *name;
        unsigned maj, min;
    } nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9},
                 {"tty", 5, 0}};
    static const char *const links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
                                           {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
    static const int keep[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID,
                               CAP_SETUID, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
                               CAP_AUDIT_WRITE, CAP_SETFCAP};
    const char *root = st->root;
    _cleanup_free_ char *proc = e2b_path_join(root, "proc");
    _cleanup_free_ char *dev = e2b_path_join(root, "dev");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(root, root, NULL, MS_BIND, NULL) < 0) { /* pivot_root wants a mount point */
        dprintf(2, "e2b build: cannot set up the mounts of the build root: %m\n");
        return -1;
    }
    (void)mkdir(proc, 0555);
    (void)mkdir(dev, 0755);
    if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
        mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755") < 0) {
        dprintf(2, "e2b build: cannot mount /proc and /dev in the build root: %m\n");
        return -1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
        _cleanup_free_ char *p = e2b_path_join(dev, nodes[i].name);
        if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0) {
            dprintf(2, "e2b build: cannot create /dev/%s: %m\n", nodes[i].name);
            return -1;
        }
        chmod(p, 0666);
    }
    for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
        _cleanup_free_ char *p = e2b_path_join(dev, links[i][1]);
        (void)!symlink(links[i][0], p);
    }
    if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0) {
        dprintf(2, "e2b build: cannot pivot into the build root: %m\n");
        return -1;
    }
    if (chdir(st->workdir) < 0) {
        dprintf(2, "e2b build: cannot enter WORKDIR %s: %m\n", st->workdir);
        return -1;
    }
    /* /proc/sys and friends read-only, as in a sandbox */
    static const char *const ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"};
    for (size_t i = 0; i < ARRAY_SIZE(ro); i++)
        if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) == 0)
            mount(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    /* the filter first, while CAP_SYS_ADMIN lets it in without no_new_privs
     * (setuid programs in RUN steps keep working) */
    _cleanup_error_ struct e2b_error *e = NULL;
    if (e2b_seccomp_apply(&e) < 0) {
        dprintf(2, "e2b build: %s\n", e->msg);
        return -1;
    }
    uint64_t kept = 0;
    for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
        kept |= 1ULL << keep[i];
    for (int c = 0; c <= 63; c++)
        if (!(kept & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) {
            dprintf(2, "e2b build: cannot drop capability %d: %m\n", c);
            return -1;
        }
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {{0}};
    data[0].effective = data[0].permitted = data[0].inheritable = (uint32_t)kept;
    data[1].effective = data[1].permitted = data[1].inheritable = (uint32_t)(kept >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0) {
        dprintf(2, "e2b build: cannot set capabilities: %m\n");
        return -1;
    }
    return 0;
}

/* Run argv in the stage root: new namespaces, chroot, USER, WORKDIR, ENV. */
static int do_run(struct state *st, json_t *argv_j, struct e2b_error **err)
{
    size_t n = json_array_size(argv_j);
    if (!n)
        return e2b_error_set(err, E2B_ERR_INVALID, "RUN: empty command");
    char **argv = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        argv[i] = xstrdup(json_string_value(json_array_get(argv_j, i)) ?: "");
    char **envp = NULL;
    json_t *vars = vars_of(st);
    const char *k;
    json_t *v;
    bool has_path = false;
    json_object_foreach(vars, k, v)
    {
        char *e = xasprintf("%s=%s", k, json_string_value(v) ?: "");
        envp = e2b_strv_push(envp, e);
        free(e);
        has_path = has_path || !strcmp(k, "PATH");
    }
    json_decref(vars);
    if (!has_path)
        envp = e2b_strv_push(envp, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    uid_t uid = 0;
    gid_t gid = 0;
    int r = 0;
    if (st->user && *st->user) {
        _cleanup_free_ char *u = xstrdup(st->user);
        char *g = strchr(u, ':');
        if (g)
            *g++ = '\0';
        if (e2b_root_lookup_uid(st->root, u, &uid, &gid, err) < 0 ||
            (g && e2b_root_lookup_gid(st->root, g, &gid, err) < 0))
            r = -1;
    }
    _cleanup_free_ char *wd = e2b_path_join(st->root, st->workdir);
    if (r == 0)
        e2b_mkdir_p(wd, 0755, NULL);
    int pfd[2] = {-1, -1};
    if (r == 0 && pipe2(pfd, O_CLOEXEC) < 0)
        r = e2b_error_sys(err, errno, "pipe");
    pid_t pid = -1;
    if (r == 0) {
        pid = fork();
        if (pid < 0)
            r = e2b_error_sys(err, errno, "fork");
    }
    if (pid == 0) {
        int fl = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
        if (!st->o->network_host)
            fl |= CLONE_NEWNET;
        if (unshare(fl) < 0)
            _exit(125);
        pid_t c = fork();
        if (c < 0)
            _exit(125);
        if (c > 0) {
            int ws;
            while (waitpid(c, &ws, 0) < 0 && errno == EINTR)
                ;
            _exit(WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
        }
        sethostname("e2b-build", 9);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        if (enter_build_root(st) < 0)
            _exit(125);
        if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
            _exit(125);
        execvpe(argv[0], argv, envp);
        dprintf(2, "%s: %m\n", argv[0]);
        _exit(127);
    }
    char tail[2048];
    size_t tlen = 0;
    if (pid > 0) {
        close(pfd[1]);
        pfd[1] = -1;
        char buf[4096];
        ssize_t m;
        while ((m = read(pfd[0], buf, sizeof(buf))) != 0) {
            if (m < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            if (st->o->output)
                st->o->output(st->o->data, buf, (size_t)m);
            for (ssize_t i = 0; i < m; i++) {
                if (tlen == sizeof(tail)) {
                    memmove(tail, tail + 1024, 1024);
                    tlen = 1024;
                }
                tail[tlen++] = buf[i];
            }
        }
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
            ;
        int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        if (code != 0) {
            while (tlen && tail[tlen - 1] == '\n')
                tlen--;
            r = e2b_error_set(err, E2B_ERR_GENERIC, "RUN %s: exit code %d%s%.*s", argv[n - 1], code,
                              tlen ? "; last output:\n" : "", (int)tlen, tail);
        }
    }
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    e2b_strv_free(argv);
    e2b_strv_free(envp);
    return r;
}

static int do_env(json_t *obj, const char *rest, json_t *vars, bool arg)
{
    _cleanup_free_ char *x = expand(rest, vars);
    char **w = split_words(x);
    size_t n = e2b_strv_len(w);
    if (!arg && n >= 2 && !strchr(w[0], '=')) {
        /* legacy `ENV KEY value words` */
        const char *sp = x;
        while (*sp == ' ')
            sp++;
        sp += strlen(w[0]);
        while (*sp == ' ')
            sp++;
        json_object_set_new(obj, w[0], json_string(sp));
    } else {
        for (size_t i = 0; i < n; i++) {
            char *eq = strchr(w[i], '=');
            if (eq) {
                *eq = '\0';
                json_object_set_new(obj, w[i], json_string(eq + 1));
            } else if (arg && !json_object_get(obj, w[i])) {
                json_object_set_new(obj, w[i], json_string(""));
            }
        }
    }
    e2b_strv_free(w);
    return 0;
}

static json_t *instrs_json(struct instr *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:s,s:i}", "instruction", v[i].cmd, "args", v[i].rest,
                                           "line", v[i].line));
    return a;
}

int e2b_build_parse(const struct e2b_build_opts *o, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    struct instr *v;
    size_t n;
    if (e2b_read_file(o->dockerfile, &text, &len, err) < 0 || parse_file(text, &v, &n, err) < 0)
        return -1;
    *ret = json_pack("{s:s,s:o}", "dockerfile", o->dockerfile, "instructions", instrs_json(v, n));
    instrs_free(v, n);
    return 0;
}

static void state_free(struct state *st)
{
    json_decref(st->env);
    json_decref(st->args);
    json_decref(st->labels);
    json_decref(st->ports);
    json_decref(st->cmd);
    json_decref(st->entrypoint);
    free(st->workdir);
    free(st->user);
    free(st->stopsignal);
    e2b_ignore_free(&st->ig);
}

int e2b_build_run(const struct e2b_build_opts *o, json_t **ret_meta, struct e2b_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    struct instr *v = NULL;
    size_t n = 0;
    if (e2b_read_file(o->dockerfile, &text, &len, err) < 0 || parse_file(text, &v, &n, err) < 0)
        return -1;
    struct e2b_store store = {0};
    struct e2b_store_txn txn = {0};
    struct state st = {.o = o};
    bool began = false;
    int r = -1;
    _cleanup_free_ char *marker = NULL, *image = NULL, *now = NULL;
    st.env = json_object();
    st.args = json_object();
    st.labels = json_object();
    st.ports = json_object();
    st.workdir = xstrdup("/");
    st.user = xstrdup("root");
    if (e2b_ignore_load(&st.ig, o->context, err) < 0)
        goto out;
    if (e2b_store_open(&store, err) < 0)
        goto out;
    e2b_store_clean_stale(&store);
    if (e2b_store_begin(&store, o->name, &txn, err) < 0)
        goto out;
    began = true;
    st.root = e2b_path_join(txn.dir, "rootfs");
    if (e2b_mkdir_p(st.root, 0755, err) < 0)
        goto out;
    json_t *buildargs = json_object();
    for (size_t i = 0; i < o->n_build_args; i++)
        do_env(buildargs, o->build_args[i], buildargs, true);
    int stages = 0;
    char *base_image = NULL;
    for (size_t i = 0; i < n; i++) {
        struct instr *in = &v[i];
        progress(o, "[%zu/%zu] %s %s", i + 1, n, in->cmd, in->rest);
        json_t *vars = vars_of(&st);
        int sr = 0;
        if (!strcmp(in->cmd, "FROM")) {
            if (++stages > 1) {
                sr = e2b_error_set(err, E2B_ERR_INVALID, "multi-stage builds are not supported yet");
            } else {
                _cleanup_free_ char *img = expand(in->rest, buildargs);
                char **w = split_words(img);
                if (!w[0] || strcmp(w[0], "scratch") != 0)
                    sr = e2b_error_set(err, E2B_ERR_NOT_FOUND, "FROM %s: unknown base image (only scratch until "
                                       "image sources land)", w[0] ? w[0] : "");
                else
                    base_image = xstrdup(w[0]);
                e2b_strv_free(w);
            }
        } else if (!strcmp(in->cmd, "ARG")) {
            /* build-arg values win over defaults */
            json_t *tmp = json_object();
            do_env(tmp, in->rest, vars, true);
            const char *k;
            json_t *val;
            json_object_foreach(tmp, k, val)
            {
                json_t *given = json_object_get(buildargs, k);
                json_object_set(st.args, k, given ? given : val);
            }
            json_decref(tmp);
        } else if (!strcmp(in->cmd, "ENV")) {
            do_env(st.env, in->rest, vars, false);
        } else if (!strcmp(in->cmd, "LABEL")) {
            do_env(st.labels, in->rest, vars, false);
        } else if (!strcmp(in->cmd, "WORKDIR")) {
            _cleanup_free_ char *x = expand(in->rest, vars);
            char *nw = x[0] == '/' ? xstrdup(x) : e2b_path_join(st.workdir, x);
            _cleanup_free_ char *c = e2b_context_clean(nw, err);
            free(nw);
            if (!c) {
                sr = -1;
            } else {
                free(st.workdir);
                st.workdir = xasprintf("/%s", strcmp(c, ".") ? c : "");
                _cleanup_free_ char *d = dest_in_root(&st, st.workdir, true, "x", err);
                if (!d)
                    sr = -1;
                else
                    e2b_mkdir_p(st.root, 0755, NULL), sr = mkdir(d, 0755) < 0 && errno != EEXIST ?
                        e2b_error_sys(err, errno, "WORKDIR") : 0;
                /* d ends in /x: mkdir made the parent, remove the marker name */
                if (d)
                    rmdir(d);
            }
        } else if (!strcmp(in->cmd, "USER")) {
            free(st.user);
            st.user = expand(in->rest, vars);
        } else if (!strcmp(in->cmd, "RUN")) {
            json_t *argv;
            if (e2b_str_has_prefix(in->rest, "<<") && strchr(in->rest, '\n')) {
                /* `RUN <<EOF` alone: the body is the script */
                const char *body = strchr(in->rest, '\n') + 1;
                const char *last = strrchr(in->rest, '\n');
                _cleanup_free_ char *script = last > body ? xstrndup(body, (size_t)(last - body)) : xstrdup("");
                argv = json_pack("[sss]", "/bin/sh", "-c", script);
            } else {
                argv = command_form(in->rest);
            }
            sr = do_run(&st, argv, err);
            json_decref(argv);
        } else if (!strcmp(in->cmd, "COPY") || !strcmp(in->cmd, "ADD")) {
            sr = do_copy(&st, in->rest, !strcmp(in->cmd, "ADD"), err);
        } else if (!strcmp(in->cmd, "CMD")) {
            json_decref(st.cmd);
            st.cmd = command_form(in->rest);
        } else if (!strcmp(in->cmd, "ENTRYPOINT")) {
            json_decref(st.entrypoint);
            st.entrypoint = command_form(in->rest);
        } else if (!strcmp(in->cmd, "EXPOSE")) {
            _cleanup_free_ char *x = expand(in->rest, vars);
            char **w = split_words(x);
            for (size_t k = 0; w[k]; k++) {
                char *p = strchr(w[k], '/') ? xstrdup(w[k]) : xasprintf("%s/tcp", w[k]);
                json_object_set_new(st.ports, p, json_object());
                free(p);
            }
            e2b_strv_free(w);
        } else if (!strcmp(in->cmd, "STOPSIGNAL")) {
            free(st.stopsignal);
            st.stopsignal = expand(in->rest, vars);
        }
        json_decref(vars);
        if (sr < 0) {
            e2b_error_wrap(err, "Dockerfile:%d: %s", in->line, in->cmd);
            json_decref(buildargs);
            free(base_image);
            goto out;
        }
    }
    json_decref(buildargs);

    if (o->ready_cmd || o->start_cmd) {
        /* start command in the background, ready command retried every 2 s;
         * the pid namespace ends both when the script exits */
        int limit = o->ready_timeout_s > 0 ? o->ready_timeout_s : 60;
        _cleanup_free_ char *script = xasprintf(
            "%s%s%s"
            "n=0; until ( %s ); do n=$((n+2)); if [ $n -ge %d ]; then "
            "echo \"ready command did not succeed within %d s\" >&2; exit 1; fi; sleep 2; done",
            o->start_cmd ? "( " : "", o->start_cmd ? o->start_cmd : "", o->start_cmd ? " ) & " : "",
            o->ready_cmd ? o->ready_cmd : "true", limit, limit);
        progress(o, "start and ready commands");
        json_t *argv = json_pack("[sss]", "/bin/sh", "-c", script);
        int rr = do_run(&st, argv, err);
        json_decref(argv);
        if (rr < 0) {
            e2b_error_wrap(err, "ready command");
            free(base_image);
            goto out;
        }
    }
    progress(o, "finishing: user account, /.e2b, ext4 image");
    struct e2b_user_info ui;
    marker = xasprintf("ENV_ID=%s\nBUILD_ID=%s\n", txn.template_id, txn.build_id);
    image = e2b_path_join(txn.dir, "rootfs.ext4");
    uint64_t size_mb = 0;
    if (e2b_root_add_user(st.root, "user", &ui, err) < 0 || e2b_root_write_marker(st.root, marker, err) < 0 ||
        e2b_ext4_from_dir(st.root, image, o->disk_headroom_mb, &size_mb, err) < 0) {
        free(base_image);
        goto out;
    }
    now = e2b_rfc3339(e2b_wall_ms());
    json_t *meta = json_pack("{s:s,s:s,s:i,s:i,s:i,s:b,s:[s],s:[s],s:s,s:s,s:s,s:s}", "templateID",
                             txn.template_id, "buildID", txn.build_id, "cpuCount", (int)(o->cpu_count ?: 2),
                             "memoryMB", (int)(o->memory_mb ?: 512), "diskSizeMB", (int)size_mb, "public", 0,
                             "aliases", o->name, "names", o->name, "createdAt", now, "updatedAt", now,
                             "envdVersion", E2B_VERSION, "buildStatus", "ready");
    json_object_set_new(meta, "startCmd", o->start_cmd ? json_string(o->start_cmd) : json_null());
    json_object_set_new(meta, "readyCmd", o->ready_cmd ? json_string(o->ready_cmd) : json_null());
    json_object_set(meta, "env", st.env);
    json_object_set_new(meta, "workdir", json_string(st.workdir));
    json_object_set_new(meta, "user", json_string(st.user));
    json_object_set(meta, "entrypoint", st.entrypoint ? st.entrypoint : json_null());
    json_object_set(meta, "cmd", st.cmd ? st.cmd : json_null());
    json_object_set(meta, "labels", st.labels);
    json_object_set(meta, "exposedPorts", st.ports);
    json_object_set_new(meta, "stopSignal", st.stopsignal ? json_string(st.stopsignal) : json_null());
    json_object_set_new(meta, "imageConfig", json_null());
    json_object_set_new(meta, "baseImage", base_image ? json_string(base_image) : json_null());
    free(base_image);
    if (e2b_store_commit(&txn, meta, err) < 0) {
        json_decref(meta);
        goto out;
    }
    if (ret_meta)
        *ret_meta = meta;
    else
        json_decref(meta);
    r = 0;
out:
    if (began)
        e2b_store_abort(&txn);
    free(st.root);
    state_free(&st);
    instrs_free(v, n);
    e2b_store_close(&store);
    return r;
}
