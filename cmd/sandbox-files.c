/* sandbox-files.c - `e2b sandbox files ls|cat|write|rm|mkdir|mv|stat|upload|download`
 * over envd's filesystem service and /files, streamed (never whole files in memory). */
#include "cmd.h"
#include "fsutil.h"
#include "output.h"
#include "process-client.h"
#include "sandbox-cli.h"
#include "sandbox-client.h"
#include "usage.h"

#include <fcntl.h>
#include <sys/stat.h>

static const struct e2b_column entry_cols[] = {
    {"type", "TYPE"}, {"permissions", "MODE"}, {"owner", "OWNER"}, {"size", "SIZE"},
    {"modifiedTime", "MODIFIED"}, {"path", "PATH"}, {NULL, NULL},
};

#define FILES_OPTS_COMMON                                                                          \
    E2B_OPT_STRING('u', "user", "USER", "act as this user (default: the sandbox's)"),             \
    E2B_OPT_STRING(0, "envd", "URL", "talk to this envd (http://HOST:PORT or unix:PATH) instead"), \
    E2B_OPT_ARG_C("sandbox", E2B_OPTF_REQUIRED, "sandbox ID ('-' with --envd)", E2B_COMPLETE_SANDBOX)

struct files_ctx {
    struct e2b_backend *backend;
    struct e2b_envd_endpoint ep;
    struct e2b_envd_client c;  /* on ep, as --user */
};

static int open_files(struct e2b_ctx *ctx, struct e2b_args *args, struct files_ctx *f)
{
    memset(f, 0, sizeof(*f));
    f->c = (struct e2b_envd_client){.ep = &f->ep, .user = e2b_args_str(args, "user")};
    return e2b_cli_envd_endpoint(ctx, args, &f->backend, &f->ep);
}

static void close_files(struct files_ctx *f)
{
    e2b_envd_endpoint_release(&f->ep);
    e2b_backend_free(f->backend);
}

/* Run one filesystem call and print what it answers; exit status. */
static int fs_call(struct e2b_ctx *ctx, struct e2b_args *args, const char *proc, json_t *msg,
                   const char *print_key, bool list)
{
    struct files_ctx f;
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_json_ json_t *req = msg;
    if (open_files(ctx, args, &f) < 0)
        return 1;
    json_t *reply = NULL;
    int r = e2b_envd_unary(&f.c, proc, req, &reply, &err);
    close_files(&f);
    if (r < 0)
        return e2b_fail(err);
    json_t *data = print_key ? json_object_get(reply, print_key) : NULL;
    if (list) {
        struct e2b_table *t = e2b_table_new(entry_cols);
        if (json_is_array(data))
            json_array_extend(e2b_table_rows(t), data);
        e2b_table_print(t, stdout, ctx->json);
        e2b_table_free(t);
    } else if (data) {
        e2b_object_print(data, entry_cols, stdout, ctx->json);
    }
    json_decref(reply);
    return 0;
}

const struct e2b_opt opts_sandbox_files_ls[] = {
    E2B_OPT_INT(0, "depth", "N", "descend N levels (default 1)"),
    FILES_OPTS_COMMON,
    E2B_OPT_ARG("path", 0, "directory (default: the user's home)"),
    E2B_OPT_END,
};

int cmd_sandbox_files_ls(struct e2b_ctx *ctx, struct e2b_args *args)
{
    long long depth = e2b_args_int(args, "depth", 1);
    if (depth < 1)
        return e2b_usage_error("sandbox files ls", "--depth must be at least 1");
    const char *path = e2b_args_str(args, "path") ? e2b_args_str(args, "path") : "";
    return fs_call(ctx, args, "filesystem.Filesystem/ListDir",
                   json_pack("{s:s, s:I}", "path", path, "depth", (json_int_t)depth), "entries", true);
}

const struct e2b_opt opts_sandbox_files_stat[] = {
    FILES_OPTS_COMMON,
    E2B_OPT_ARG("path", E2B_OPTF_REQUIRED, "file or directory"),
    E2B_OPT_END,
};

int cmd_sandbox_files_stat(struct e2b_ctx *ctx, struct e2b_args *args)
{
    return fs_call(ctx, args, "filesystem.Filesystem/Stat",
                   json_pack("{s:s}", "path", e2b_args_str(args, "path")), "entry", false);
}

const struct e2b_opt opts_sandbox_files_mkdir[] = {
    FILES_OPTS_COMMON,
    E2B_OPT_ARG("path", E2B_OPTF_REQUIRED, "directory to make (parents too)"),
    E2B_OPT_END,
};

int cmd_sandbox_files_mkdir(struct e2b_ctx *ctx, struct e2b_args *args)
{
    return fs_call(ctx, args, "filesystem.Filesystem/MakeDir",
                   json_pack("{s:s}", "path", e2b_args_str(args, "path")), NULL, false);
}

const struct e2b_opt opts_sandbox_files_rm[] = {
    FILES_OPTS_COMMON,
    E2B_OPT_ARG("path", E2B_OPTF_REQUIRED, "file or directory to remove (recursively)"),
    E2B_OPT_END,
};

int cmd_sandbox_files_rm(struct e2b_ctx *ctx, struct e2b_args *args)
{
    return fs_call(ctx, args, "filesystem.Filesystem/Remove",
                   json_pack("{s:s}", "path", e2b_args_str(args, "path")), NULL, false);
}

const struct e2b_opt opts_sandbox_files_mv[] = {
    FILES_OPTS_COMMON,
    E2B_OPT_ARG("source", E2B_OPTF_REQUIRED, "path to move"),
    E2B_OPT_ARG("destination", E2B_OPTF_REQUIRED, "new path"),
    E2B_OPT_END,
};

int cmd_sandbox_files_mv(struct e2b_ctx *ctx, struct e2b_args *args)
{
    return fs_call(ctx, args, "filesystem.Filesystem/Move",
                   json_pack("{s:s, s:s}", "source", e2b_args_str(args, "source"), "destination",
                             e2b_args_str(args, "destination")), NULL, false);
}

const struct e2b_opt opts_sandbox_files_cat[] = {
    FILES_OPTS_COMMON,
    E2B_OPT_ARG("path", E2B_OPTF_REQUIRED, "file to print"),
    E2B_OPT_END,
};

int cmd_sandbox_files_cat(struct e2b_ctx *ctx, struct e2b_args *args)
{
    struct files_ctx f;
    _cleanup_error_ struct e2b_error *err = NULL;
    if (open_files(ctx, args, &f) < 0)
        return 1;
    fflush(stdout);
    int r = e2b_envd_file_download(&f.c, e2b_args_str(args, "path"), STDOUT_FILENO, "stdout", &err);
    close_files(&f);
    return r < 0 ? e2b_fail(err) : 0;
}

const struct e2b_opt opts_sandbox_files_write[] = {
    FILES_OPTS_COMMON,
    E2B_OPT_ARG("path", E2B_OPTF_REQUIRED, "file to write from standard input"),
    E2B_OPT_END,
};

int cmd_sandbox_files_write(struct e2b_ctx *ctx, struct e2b_args *args)
{
    struct files_ctx f;
    _cleanup_error_ struct e2b_error *err = NULL;
    if (open_files(ctx, args, &f) < 0)
        return 1;
    int r = e2b_envd_file_upload(&f.c, e2b_args_str(args, "path"), STDIN_FILENO, "stdin", &err);
    close_files(&f);
    return r < 0 ? e2b_fail(err) : 0;
}

/* Modes to set after an upload: /files makes new files 0644 (and keeps an
 * existing file's), so the tree's own modes go on with chmod, one process
 * per mode and batch of paths. */
struct modes {
    unsigned mode[64];
    char **paths[64];
    size_t n;
};

static void modes_add(struct modes *m, unsigned mode, const char *path)
{
    size_t i = 0;
    while (i < m->n && m->mode[i] != mode)
        i++;
    if (i == m->n) {
        if (m->n == ARRAY_SIZE(m->mode))
            return; /* 64 distinct modes in one tree: the rest stay as they are */
        m->mode[m->n++] = mode;
    }
    m->paths[i] = e2b_strv_push(m->paths[i], path);
}

static void modes_release(struct modes *m)
{
    for (size_t i = 0; i < m->n; i++)
        e2b_strv_free(m->paths[i]);
}

/* Run chmod in the sandbox for every mode; <0 when one of them failed. */
static int modes_apply(struct files_ctx *f, struct modes *m, struct e2b_error **err)
{
    for (size_t i = 0; i < m->n; i++) {
        char mode[16];
        snprintf(mode, sizeof(mode), "%o", m->mode[i]);
        for (char **p = m->paths[i]; p && *p;) {
            const char *argv[260] = {"chmod", mode, "--"};
            size_t k = 3, bytes = 0;
            while (*p && k < ARRAY_SIZE(argv) - 1 && bytes < 64 * 1024) {
                bytes += strlen(*p);
                argv[k++] = *p++;
            }
            struct e2b_run_opts o = {.argv = argv, .user = f->c.user, .out_fd = STDERR_FILENO,
                                     .err_fd = STDERR_FILENO};
            int code = 0;
            if (e2b_process_run(&f->ep, &o, &code, err) < 0)
                return -1;
            if (code != 0)
                return e2b_error_set(err, E2B_ERR_GENERIC, "cannot keep file modes: chmod %s exited with %d",
                                     mode, code);
        }
    }
    return 0;
}

static void skipped(const char *what, const char *path)
{
    fprintf(stderr, "e2b: warning: skipped %s '%s' (not copied)\n", what, path);
}

static const char *kind_of(mode_t m)
{
    return S_ISLNK(m) ? "symbolic link" : S_ISFIFO(m) ? "named pipe" : S_ISSOCK(m) ? "socket"
           : S_ISCHR(m) || S_ISBLK(m) ? "device" : "special file";
}

/* Upload a local file or tree to a remote path. */
static int upload_tree(struct files_ctx *f, const char *local, const char *remote, struct modes *m,
                       struct e2b_error **err)
{
    struct stat st;
    if (lstat(local, &st) < 0)
        return e2b_error_sys(err, errno, "cannot read '%s'", local);
    if (S_ISREG(st.st_mode)) {
        _cleanup_close_ int fd = open(local, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return e2b_error_sys(err, errno, "cannot read '%s'", local);
        _cleanup_free_ char *name = xasprintf("'%s'", local);
        if (e2b_envd_file_upload(&f->c, remote, fd, name, err) < 0)
            return -1;
        modes_add(m, st.st_mode & 07777, remote);
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        skipped(kind_of(st.st_mode), local);
        return 0;
    }
    json_t *msg = json_pack("{s:s}", "path", remote);
    _cleanup_error_ struct e2b_error *mkerr = NULL;
    if (e2b_envd_unary(&f->c, "filesystem.Filesystem/MakeDir", msg, NULL, &mkerr) < 0 &&
        mkerr->code != E2B_ERR_EXISTS) {
        json_decref(msg);
        *err = TAKE_PTR(mkerr);
        return -1;
    }
    json_decref(msg);
    _cleanup_closedir_ DIR *d = opendir(local);
    if (!d)
        return e2b_error_sys(err, errno, "cannot read '%s'", local);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
            continue;
        _cleanup_free_ char *l = e2b_path_join(local, de->d_name);
        _cleanup_free_ char *r = e2b_path_join(remote, de->d_name);
        if (upload_tree(f, l, r, m, err) < 0)
            return -1;
    }
    modes_add(m, st.st_mode & 07777, remote); /* after its files, so a read-only dir is no obstacle */
    return 0;
}

/* Download a remote file or tree (ListDir level by level) to a local path,
 * with the modes envd reports (permission bits only: nothing setuid comes
 * out of a sandbox). */
static int download_tree(struct files_ctx *f, const char *remote, const char *local, struct e2b_error **err)
{
    json_t *msg = json_pack("{s:s}", "path", remote), *reply = NULL;
    int r = e2b_envd_unary(&f->c, "filesystem.Filesystem/Stat", msg, &reply, err);
    json_decref(msg);
    if (r < 0)
        return -1;
    json_t *entry = json_object_get(reply, "entry");
    const char *type = e2b_json_str(entry, "type");
    mode_t mode = (mode_t)e2b_json_int(entry, "mode", 0) & 0777;
    bool dir = type && STREQ(type, "FILE_TYPE_DIRECTORY"), file = type && STREQ(type, "FILE_TYPE_FILE");
    if (!dir && !file) {
        if (type && STREQ(type, "FILE_TYPE_SYMLINK"))
            fprintf(stderr, "e2b: warning: skipped symbolic link '%s' -> '%s' (not copied)\n", remote,
                    e2b_json_str(entry, "symlinkTarget") ? e2b_json_str(entry, "symlinkTarget") : "?");
        else
            skipped("special file", remote);
        json_decref(reply);
        return 0;
    }
    json_decref(reply);
    if (file) {
        _cleanup_free_ char *name = xasprintf("'%s'", local);
        struct stat lst;
        if (stat(local, &lst) == 0 && !S_ISREG(lst.st_mode) && !S_ISDIR(lst.st_mode)) {
            /* a device or a pipe (/dev/null, a fifo) is written into, as cp
             * does: renaming a file over it would replace the device */
            _cleanup_close_ int dev = open(local, O_WRONLY | O_CLOEXEC);
            if (dev < 0)
                return e2b_error_sys(err, errno, "cannot write %s", name);
            return e2b_envd_file_download(&f->c, remote, dev, name, err);
        }
        _cleanup_free_ char *tmp = xasprintf("%s.part", local);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            return e2b_error_sys(err, errno, "cannot write '%s'", tmp);
        if (e2b_envd_file_download(&f->c, remote, fd, name, err) < 0 || fchmod(fd, mode) < 0 ||
            rename(tmp, local) < 0) {
            if (!*err)
                e2b_error_sys(err, errno, "cannot write '%s'", local);
            unlink(tmp);
            return -1;
        }
        return 0;
    }
    if (e2b_mkdir_p(local, 0755, err) < 0)
        return -1;
    msg = json_pack("{s:s, s:i}", "path", remote, "depth", 1);
    r = e2b_envd_unary(&f->c, "filesystem.Filesystem/ListDir", msg, &reply, err);
    json_decref(msg);
    if (r < 0)
        return -1;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(reply, "entries"), i, e) {
        const char *name = e2b_json_str(e, "name");
        if (!name)
            continue;
        _cleanup_free_ char *rr = e2b_path_join(remote, name);
        _cleanup_free_ char *ll = e2b_path_join(local, name);
        if (download_tree(f, rr, ll, err) < 0) {
            json_decref(reply);
            return -1;
        }
    }
    json_decref(reply);
    if (chmod(local, mode) < 0) /* last: a read-only directory got its files first */
        return e2b_error_sys(err, errno, "cannot set the mode of '%s'", local);
    return 0;
}

const struct e2b_opt opts_sandbox_files_upload[] = {
    FILES_OPTS_COMMON,
    E2B_OPT_ARG_C("local", E2B_OPTF_REQUIRED, "local file or directory", E2B_COMPLETE_FILE),
    E2B_OPT_ARG("remote", E2B_OPTF_REQUIRED, "path in the sandbox"),
    E2B_OPT_END,
};

int cmd_sandbox_files_upload(struct e2b_ctx *ctx, struct e2b_args *args)
{
    struct files_ctx f;
    _cleanup_error_ struct e2b_error *err = NULL;
    if (open_files(ctx, args, &f) < 0)
        return 1;
    struct modes m = {0};
    int r = upload_tree(&f, e2b_args_str(args, "local"), e2b_args_str(args, "remote"), &m, &err);
    if (r == 0)
        r = modes_apply(&f, &m, &err);
    modes_release(&m);
    close_files(&f);
    return r < 0 ? e2b_fail(err) : 0;
}

const struct e2b_opt opts_sandbox_files_download[] = {
    FILES_OPTS_COMMON,
    E2B_OPT_ARG("remote", E2B_OPTF_REQUIRED, "file or directory in the sandbox"),
    E2B_OPT_ARG_C("local", E2B_OPTF_REQUIRED, "local path to write", E2B_COMPLETE_FILE),
    E2B_OPT_END,
};

int cmd_sandbox_files_download(struct e2b_ctx *ctx, struct e2b_args *args)
{
    struct files_ctx f;
    _cleanup_error_ struct e2b_error *err = NULL;
    if (open_files(ctx, args, &f) < 0)
        return 1;
    int r = download_tree(&f, e2b_args_str(args, "remote"), e2b_args_str(args, "local"), &err);
    close_files(&f);
    return r < 0 ? e2b_fail(err) : 0;
}
