/* build-add.c - see build-add.h */
#include "build-add.h"
#include "build-cache.h"
#include "build-copy.h"
#include "build-user.h"
#include "dl-archive.h"
#include "fsutil.h"
#include "http.h"
#include "strbuf.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- ADD: archives and URLs ---- */

/* Is the file (an O_PATH fd) a tar archive libarchive can read (plain or
 * compressed)? */
static bool is_archive(int path_fd)
{
    _cleanup_close_ int fd = e2b_tree_reopen(path_fd, O_RDONLY);
    if (fd < 0)
        return false;
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    bool ok = false;
    if (archive_read_open_fd(a, fd, 65536) == ARCHIVE_OK) {
        struct archive_entry *e;
        ok = archive_read_next_header(a, &e) == ARCHIVE_OK;
    }
    archive_read_free(a);
    return ok;
}

/* ADD of a local tar: unpacked into dest by a child chrooted into the
 * root, with libarchive's guards against '..', absolute names and writes
 * through symlinks. */
static int add_unpack(int path_fd, const char *name, const char *root, const char *dest_in, struct e2b_error **err)
{
    _cleanup_close_ int fd = e2b_tree_reopen(path_fd, O_RDONLY);
    if (fd < 0)
        return e2b_error_sys(err, errno, "ADD %s", name);
    if (e2b_tree_mkdir_in(root, dest_in, err) < 0)
        return -1;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return e2b_error_sys(err, errno, "pipe");
    pid_t pid = fork();
    if (pid < 0)
        return e2b_error_sys(err, errno, "fork");
    if (pid == 0) {
        close(pfd[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (chroot(root) < 0 || chdir("/") < 0 || chdir(dest_in) < 0) {
            dprintf(pfd[1], "cannot enter %s: %m", dest_in);
            _exit(1);
        }
        struct archive *a = archive_read_new(), *w = archive_write_disk_new();
        archive_read_support_filter_all(a);
        archive_read_support_format_tar(a);
        archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                              ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_OWNER |
                                              ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                              ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_UNLINK);
        archive_write_disk_set_standard_lookup(w);
        if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
            dprintf(pfd[1], "%s", archive_error_string(a));
            _exit(1);
        }
        struct archive_entry *e;
        int rr;
        while ((rr = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
            if (archive_write_header(w, e) != ARCHIVE_OK) {
                dprintf(pfd[1], "entry '%s': %s", archive_entry_pathname(e), archive_error_string(w));
                _exit(1);
            }
            const void *buf;
            size_t len;
            int64_t off;
            int dr;
            while ((dr = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
                if (archive_write_data_block(w, buf, len, off) < 0) {
                    dprintf(pfd[1], "%s: %s", archive_entry_pathname(e), archive_error_string(w));
                    _exit(1);
                }
            if (dr != ARCHIVE_EOF) {
                dprintf(pfd[1], "%s", archive_error_string(a));
                _exit(1);
            }
            if (archive_write_finish_entry(w) != ARCHIVE_OK) {
                dprintf(pfd[1], "%s: %s", archive_entry_pathname(e), archive_error_string(w));
                _exit(1);
            }
        }
        if (rr != ARCHIVE_EOF) {
            dprintf(pfd[1], "%s", archive_error_string(a));
            _exit(1);
        }
        _exit(archive_write_close(w) == ARCHIVE_OK ? 0 : 1);
    }
    close(pfd[1]);
    char msg[1024];
    ssize_t n, t = 0;
    while (t < (ssize_t)sizeof(msg) - 1 && (n = read(pfd[0], msg + t, sizeof(msg) - 1 - (size_t)t)) > 0)
        t += n;
    msg[t] = '\0';
    close(pfd[0]);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws))
        return e2b_error_set(err, E2B_ERR_INVALID, "ADD %s: %s", name, *msg ? msg : "cannot unpack");
    return 0;
}

struct dl {
    int fd;
    struct e2b_sha256 h;
    struct e2b_error **err;
};

static int dl_data(const void *data, size_t len, void *ud)
{
    struct dl *d = ud;
    e2b_sha256_update(&d->h, data, len);
    return e2b_write_all(d->fd, data, len) < 0 ? -1 : 0;
}

/* ADD https://...: download into dir/<name>, checked against --checksum. */
static int add_fetch(const char *url, const char *checksum, const char *path,
                     char out_digest[E2B_SHA256_DIGEST_SIZE], struct e2b_error **err)
{
    struct dl d = {.err = err};
    d.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (d.fd < 0)
        return e2b_error_sys(err, errno, "%s", path);
    e2b_sha256_init(&d.h);
    struct e2b_http_req req = {
        .base = url, .path = "", .on_data = dl_data, .ud = &d, .follow_redirects = true,
        .timeout_ms = 600000, .retries = 2,
    };
    struct e2b_http_resp resp = {0};
    int r = e2b_http_request(&req, &resp, err);
    e2b_http_resp_release(&resp);
    if (close(d.fd) < 0 && r == 0)
        r = e2b_error_sys(err, errno, "write %s", path);
    if (r < 0)
        return e2b_error_wrap(err, "ADD %s", url);
    e2b_sha256_final_digest(&d.h, out_digest);
    if (checksum && strcmp(checksum, out_digest))
        return e2b_error_set(err, E2B_ERR_INVALID, "ADD %s: checksum mismatch: expected %s, got %s", url,
                             checksum, out_digest);
    return 0;
}

static bool is_url(const char *s)
{
    return e2b_str_has_prefix(s, "http://") || e2b_str_has_prefix(s, "https://");
}

/* ---- sources ---- */

static int parse_chown(const char *root, const char *spec, uid_t *uid, gid_t *gid, struct e2b_error **err)
{
    _cleanup_free_ char *u = xstrdup(spec);
    char *g = strchr(u, ':');
    if (g)
        *g++ = '\0';
    if (e2b_root_lookup_uid(root, u, uid, gid, err) < 0 || (g && e2b_root_lookup_gid(root, g, gid, err) < 0))
        return -1;
    return 0;
}

struct e2b_build_add_src {
    int fd;           /* O_PATH, resolved inside its tree */
    char *rel;        /* context-relative name for .dockerignore, "." for the top */
    char *name;       /* name at the destination: the base name, or the kept path (--parents) */
    bool ignore;      /* honour .dockerignore */
    bool root_owned;  /* context, heredoc or download: 0:0 unless --chown */
    bool unpack;      /* ADD of a local archive */
};

static void src_push(struct e2b_build_add_src **v, size_t *n, struct e2b_build_add_src s)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = s;
}

static void srcs_free(struct e2b_build_add_src *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        close(v[i].fd);
        free(v[i].rel);
        free(v[i].name);
    }
    free(v);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* --exclude=PATTERN (repeatable) as an ignore list; false when none. */
static bool excludes_load(const struct e2b_df_instr *in, struct e2b_ignore *ex)
{
    memset(ex, 0, sizeof(*ex));
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    for (size_t i = 0; i < in->n_flags; i++)
        if (!strcmp(in->flags[i].name, "exclude") && in->flags[i].value) {
            strbuf_addstr(&sb, in->flags[i].value);
            strbuf_addch(&sb, '\n');
        }
    e2b_ignore_parse(ex, sb.buf ? sb.buf : "");
    strbuf_release(&sb);
    return ex->n > 0;
}

/* A file the builder wrote (heredoc, download) as a source. */
static int src_file(struct e2b_build_add_src **v, size_t *n, const char *path, const char *name, struct e2b_error **err)
{
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return e2b_error_sys(err, errno, "%s", path);
    src_push(v, n, (struct e2b_build_add_src){.fd = fd, .rel = xstrdup("."), .name = xstrdup(name), .root_owned = true});
    return 0;
}

/* Sources of COPY/ADD: context files (wildcards in the last component),
 * another stage or image, heredocs, URLs (downloaded into tmpdir). Context
 * and stage paths are resolved inside their tree (build-copy.h): a symlink
 * there cannot lead to the host. */
int e2b_build_add_sources(const struct e2b_build_src *bs, const struct e2b_df_instr *in, const char *tmpdir,
                          struct e2b_build_add *ret, struct e2b_sha256 *kc, struct e2b_error **err)
{
    bool add = in->kind == E2B_DF_ADD;
    const char *what = add ? "ADD" : "COPY";
    const char *from = e2b_df_flag(in, "from", NULL);
    const char *checksum = e2b_df_flag(in, "checksum", NULL);
    bool parents = false, unpack_flag = false, git_dir = false;
    const char *unpack_v = e2b_df_flag(in, "unpack", &unpack_flag);
    (void)e2b_df_flag(in, "parents", &parents);
    (void)e2b_df_flag(in, "keep-git-dir", &git_dir);
    const char *pv = e2b_df_flag(in, "parents", NULL);
    if (pv && strcmp(pv, "true") && strcmp(pv, "false"))
        return e2b_error_set(err, E2B_ERR_INVALID, "%s --parents=%s: expected true or false", what, pv);
    parents = parents && (!pv || !strcmp(pv, "true"));
    if (unpack_v && strcmp(unpack_v, "true") && strcmp(unpack_v, "false"))
        return e2b_error_set(err, E2B_ERR_INVALID, "ADD --unpack=%s: expected true or false", unpack_v);
    bool unpack = !unpack_flag || !unpack_v || !strcmp(unpack_v, "true");
    if (git_dir)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "ADD --keep-git-dir: git sources in ADD are not supported by this builder "
                             "(use a git build context)");
    struct e2b_ignore ex;
    bool has_ex = excludes_load(in, &ex);
    const char *base = NULL;
    _cleanup_close_ int base_fd = -1;
    int r = 0;
    struct e2b_build_add_src *v = NULL;
    size_t n = 0;
    if (from) {
        const char *key;
        if (bs->from(bs->ud, in->from_stage, from, what, &base, &key, err) < 0) {
            r = -1;
            goto out;
        }
        e2b_build_key_str(kc, key);
        base_fd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (base_fd < 0) {
            r = e2b_error_sys(err, errno, "%s --from=%s", what, from);
            goto out;
        }
    }
    int tree = base ? base_fd : bs->ctx_fd;
    for (size_t i = 0; r == 0 && i + 1 < in->n_args; i++) {
        const char *a = in->args[i];
        if (e2b_str_has_prefix(a, "<<")) {
            _cleanup_free_ char *nm = xstrdup(a + 2 + (a[2] == '-'));
            size_t nl = strlen(nm);
            if (nl >= 2 && (nm[0] == '"' || nm[0] == '\'') && nm[nl - 1] == nm[0]) {
                memmove(nm, nm + 1, nl - 2);
                nm[nl - 2] = '\0';
            }
            const struct e2b_df_heredoc *h = NULL;
            for (size_t k = 0; !h && k < in->n_heredocs; k++)
                if (!strcmp(in->heredocs[k].name, nm))
                    h = &in->heredocs[k];
            if (!h) {
                r = e2b_error_set(err, E2B_ERR_INVALID, "%s %s: no such heredoc", what, a);
                break;
            }
            _cleanup_free_ char *p = xasprintf("%s/heredoc-%zu", tmpdir, i);
            if (e2b_write_file_atomic(p, h->content, strlen(h->content), 0644, err) < 0 ||
                src_file(&v, &n, p, h->name, err) < 0) {
                r = -1;
                break;
            }
            e2b_build_key_str(kc, h->content);
            continue;
        }
        if (add && is_url(a) && !from) {
            const char *q = strrchr(a, '/');
            _cleanup_free_ char *nm = xstrndup(q + 1, strcspn(q + 1, "?#"));
            if (!*nm) {
                free(nm);
                nm = xstrdup("download");
            }
            _cleanup_free_ char *p = xasprintf("%s/url-%zu", tmpdir, i);
            char dg[E2B_SHA256_DIGEST_SIZE];
            if (bs->progress) {
                _cleanup_free_ char *line = xasprintf("  fetching %s", a);
                bs->progress(bs->ud, line);
            }
            if (add_fetch(a, checksum, p, dg, err) < 0 || src_file(&v, &n, p, nm, err) < 0) {
                r = -1;
                break;
            }
            e2b_build_key_str(kc, dg);
            continue;
        }
        _cleanup_free_ char *rel = e2b_context_clean(a, err);
        if (!rel) {
            r = e2b_error_wrap(err, "%s", what);
            break;
        }
        /* --parents keeps the source's path below a `/./` pivot (or all of it) */
        _cleanup_free_ char *pivot = NULL;
        const char *pp = strstr(a, "/./");
        if (parents && pp) {
            _cleanup_free_ char *pre = xstrndup(a, (size_t)(pp - a));
            pivot = e2b_context_clean(pre, NULL);
        }
        /* wildcards in the last component */
        const char *last = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
        char **matches = NULL;
        if (strpbrk(last, "*?[")) {
            _cleanup_free_ char *dirrel = last > rel ? xstrndup(rel, (size_t)(last - rel - 1)) : xstrdup(".");
            _cleanup_close_ int dfd = e2b_tree_open(tree, dirrel, O_RDONLY | O_DIRECTORY);
            DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;
            struct dirent *de;
            while (d && (de = readdir(d))) {
                if ((de->d_name[0] == '.' && last[0] != '.') || !strcmp(de->d_name, ".") ||
                    !strcmp(de->d_name, "..") || !e2b_glob_match(last, de->d_name))
                    continue;
                char *m = strcmp(dirrel, ".") ? e2b_path_join(dirrel, de->d_name) : xstrdup(de->d_name);
                if (base || !e2b_ignore_match(bs->ignore, m) || e2b_ignore_may_include_below(bs->ignore, m))
                    matches = e2b_strv_push(matches, m);
                free(m);
            }
            if (d)
                closedir(d);
            if (!matches) {
                r = e2b_error_set(err, E2B_ERR_NOT_FOUND, "%s %s: no source files match", what, a);
                break;
            }
            /* readdir order is the file system's: make it stable */
            qsort(matches, e2b_strv_len(matches), sizeof(char *), cmp_strp);
        } else {
            matches = e2b_strv_push(NULL, rel);
        }
        for (char **m = matches; r == 0 && *m; m++) {
            const char *bn = strrchr(*m, '/') ? strrchr(*m, '/') + 1 : *m;
            if (has_ex && (e2b_ignore_match(&ex, *m) || e2b_ignore_match(&ex, bn)))
                continue;
            int fd = e2b_tree_open(tree, *m, O_PATH);
            struct stat st;
            /* excluded by .dockerignore: not there, unless a directory an
             * exception re-includes something of */
            if (fd >= 0 && !base && strcmp(*m, ".") && e2b_ignore_match(bs->ignore, *m) &&
                (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || !e2b_ignore_may_include_below(bs->ignore, *m))) {
                close(fd);
                fd = -1;
                errno = ENOENT;
            }
            if (fd < 0) {
                r = errno == ENOENT || errno == ENOTDIR
                        ? e2b_error_set(err, E2B_ERR_NOT_FOUND, "%s %s: not %s", what, a,
                                        base ? "in that stage or image" : "in the build context")
                        : e2b_error_sys(err, errno, "%s %s", what, a);
                break;
            }
            if (fstat(fd, &st) < 0) {
                r = e2b_error_sys(err, errno, "%s %s", what, a);
                close(fd);
                break;
            }
            const char *keep = bn;
            if (parents) {
                keep = *m;
                size_t pl = pivot ? strlen(pivot) : 0;
                if (pivot && strcmp(pivot, ".") && !strncmp(*m, pivot, pl) && (*m)[pl] == '/')
                    keep = *m + pl + 1;
            }
            /* another stage's or image's content is named by its key already */
            if (base)
                e2b_build_key_str(kc, *m);
            else if (e2b_copy_hash(kc, fd, *m, bs->ignore, has_ex ? &ex : NULL, err) < 0) {
                close(fd);
                r = -1;
                break;
            }
            src_push(&v, &n, (struct e2b_build_add_src){
                .fd = fd, .rel = xstrdup(*m), .name = xstrdup(keep), .ignore = !base, .root_owned = !base,
                .unpack = add && unpack && !base && S_ISREG(st.st_mode) && is_archive(fd),
            });
        }
        e2b_strv_free(matches);
    }
out:
    e2b_ignore_free(&ex);
    if (r < 0) {
        srcs_free(v, n);
        return -1;
    }
    ret->v = v;
    ret->n = n;
    return 0;
}

int e2b_build_add_apply(const struct e2b_build_src *bs, const struct e2b_df_instr *in, const char *workdir,
                        const char *root, const struct e2b_build_add *add, struct e2b_error **err)
{
    const struct e2b_build_add_src *srcs = add->v;
    size_t n = add->n;
    const char *what = in->kind == E2B_DF_ADD ? "ADD" : "COPY";
    struct e2b_copy_opts co = {0};
    struct e2b_chmod chm = {0};
    const char *ch = e2b_df_flag(in, "chown", NULL), *cm = e2b_df_flag(in, "chmod", NULL);
    bool parents = false;
    const char *pv = e2b_df_flag(in, "parents", &parents);
    parents = parents && (!pv || !strcmp(pv, "true"));
    if (ch) {
        if (parse_chown(root, ch, &co.uid, &co.gid, err) < 0)
            return e2b_error_wrap(err, "%s --chown", what);
        co.own = true;
    }
    if (cm && *cm) {
        if (e2b_chmod_parse(cm, &chm, err) < 0)
            return e2b_error_wrap(err, "%s", what);
        co.chmod = &chm;
    }
    struct e2b_ignore ex;
    if (excludes_load(in, &ex))
        co.exclude = &ex;
    _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int r = rfd < 0 ? e2b_error_sys(err, errno, "%s", root) : 0;
    const char *dest = in->args[in->n_args - 1];
    _cleanup_free_ char *abs0 = dest[0] == '/' ? xstrdup(dest) : e2b_path_join(workdir, dest);
    _cleanup_free_ char *clean = r == 0 ? e2b_context_clean(abs0, err) : NULL;
    if (r == 0 && !clean)
        r = -1;
    _cleanup_free_ char *abs = clean ? xasprintf("/%s", strcmp(clean, ".") ? clean : "") : NULL;
    bool dir_dest = e2b_str_has_suffix(dest, "/") || n > 1 || parents;
    for (size_t i = 0; r == 0 && i < n; i++) {
        struct stat st;
        if (fstat(srcs[i].fd, &st) < 0) {
            r = e2b_error_sys(err, errno, "%s %s", what, srcs[i].rel);
            break;
        }
        if (srcs[i].unpack) {
            r = add_unpack(srcs[i].fd, srcs[i].rel, root, abs, err);
            continue;
        }
        bool into = parents || (dir_dest && !S_ISDIR(st.st_mode));
        if (!into && !S_ISDIR(st.st_mode)) {
            /* an existing directory at dest (a symlink to one, resolved in
             * the image) receives the file */
            _cleanup_close_ int dfd = e2b_tree_open(rfd, abs, O_PATH | O_DIRECTORY);
            into = dfd >= 0;
        }
        _cleanup_free_ char *dst = into ? e2b_path_join(abs, srcs[i].name) : xstrdup(abs);
        co.ignore = srcs[i].ignore ? bs->ignore : NULL;
        co.root_owned = srcs[i].root_owned;
        r = e2b_copy_tree(&co, srcs[i].fd, srcs[i].rel, rfd, dst, err);
    }
    e2b_chmod_free(&chm);
    e2b_ignore_free(&ex);
    return r;
}

void e2b_build_add_release(struct e2b_build_add *add)
{
    srcs_free(add->v, add->n);
    add->v = NULL;
    add->n = 0;
}
