/* volume.c - `e2b volume create|list|rm|ls|cp`: volumes on this machine or
 * through an E2B-compatible API (the backend's volumes area). */
#include "cmd.h"
#include "output.h"
#include "sandbox-cli.h"
#include "usage.h"

#include <fcntl.h>
#include <sys/stat.h>

static int fail_sys(int e, const char *what, const char *path)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    e2b_error_sys(&err, e, "cannot %s '%s'", what, path);
    return e2b_fail(err);
}

static const struct e2b_column volume_cols[] = {
    {"volumeID", "VOLUME ID"}, {"name", "NAME"}, {"quotaMB", "QUOTA MIB"}, {"createdAt", "CREATED AT"},
    {NULL, NULL},
};

static const struct e2b_column entry_cols[] = {
    {"type", "TYPE"}, {"mode", "MODE"}, {"size", "SIZE"}, {"mtime", "MODIFIED"}, {"path", "PATH"},
    {NULL, NULL},
};

const struct e2b_opt opts_volume_create[] = {
    E2B_OPT_INT(0, "size", "MIB", "the volume's quota in MiB (default 1024)"),
    E2B_OPT_ARG("name", E2B_OPTF_REQUIRED, "the volume's name ([A-Za-z0-9._-], at most 64)"),
    E2B_OPT_END,
};

int cmd_volume_create(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *v = NULL;
    long long size = e2b_args_int(args, "size", 0);
    if (size < 0)
        return e2b_usage_error("volume create", "--size cannot be negative");
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    if (b->ops->volumes.create(b, e2b_args_str(args, "name"), size, &v, &err) < 0)
        return e2b_fail(err);
    if (ctx->json)
        e2b_object_print(v, volume_cols, stdout, true);
    else
        printf("%s\n", e2b_json_str(v, "volumeID"));
    return 0;
}

const struct e2b_opt opts_volume_list[] = {
    E2B_OPT_END,
};

int cmd_volume_list(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *list = NULL;
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    if (b->ops->volumes.list(b, &list, &err) < 0)
        return e2b_fail(err);
    struct e2b_table *t = e2b_table_new(volume_cols);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        json_t *row = e2b_table_add_row(t);
        json_object_update(row, v);
        json_object_del(row, "token"); /* a credential: `e2b volume list` is no place for it */
    }
    e2b_table_print(t, stdout, ctx->json);
    e2b_table_free(t);
    return 0;
}

const struct e2b_opt opts_volume_rm[] = {
    E2B_OPT_ARGS_C("volume", E2B_OPTF_REQUIRED, "volume IDs or names", E2B_COMPLETE_VOLUME),
    E2B_OPT_END,
};

int cmd_volume_rm(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_backend_ struct e2b_backend *b = NULL;
    size_t n;
    const char *const *names = e2b_args_list(args, "volume", &n);
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        _cleanup_error_ struct e2b_error *err = NULL;
        if (b->ops->volumes.delete(b, names[i], &err) < 0) {
            e2b_fail(err);
            rc = 1;
        } else if (!ctx->quiet) {
            fprintf(stderr, "Deleted volume %s\n", names[i]);
        }
    }
    return rc;
}

/* "VOLUME:PATH" -> volume and path; false when it has no colon. */
static bool split_remote(const char *s, char **ret_volume, const char **ret_path)
{
    const char *colon = strchr(s, ':'), *slash = strchr(s, '/');
    if (!colon || colon == s || (slash && slash < colon))
        return false;
    *ret_volume = xstrndup(s, (size_t)(colon - s));
    *ret_path = *(colon + 1) ? colon + 1 : "/";
    return true;
}

const struct e2b_opt opts_volume_ls[] = {
    E2B_OPT_INT('d', "depth", "N", "levels to descend (default 1)"),
    E2B_OPT_ARG_C("volume", E2B_OPTF_REQUIRED, "VOLUME or VOLUME:PATH (ID or name; PATH defaults to /)",
                  E2B_COMPLETE_VOLUME),
    E2B_OPT_END,
};

int cmd_volume_ls(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *list = NULL;
    _cleanup_free_ char *vol = NULL;
    const char *arg = e2b_args_str(args, "volume"), *path = "/";
    if (!split_remote(arg, &vol, &path))
        vol = xstrdup(arg);
    long long depth = e2b_args_int(args, "depth", 1);
    if (depth < 1 || depth > 32)
        return e2b_usage_error("volume ls", "--depth must be 1 to 32");
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    if (b->ops->volumes.ls(b, vol, path, (int)depth, &list, &err) < 0)
        return e2b_fail(err);
    struct e2b_table *t = e2b_table_new(entry_cols);
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        json_t *row = e2b_table_add_row(t);
        json_object_update(row, e);
        if (!ctx->json) /* the mode as ls shows it */
            json_object_set_new(row, "mode", json_sprintf("%04llo", (unsigned long long)e2b_json_int(e, "mode", 0)));
    }
    e2b_table_print(t, stdout, ctx->json);
    e2b_table_free(t);
    return 0;
}

const struct e2b_opt opts_volume_cp[] = {
    E2B_OPT_ARG_C("source", E2B_OPTF_REQUIRED, "a local file, '-' (standard input) or VOLUME:PATH", E2B_COMPLETE_FILE),
    E2B_OPT_ARG_C("destination", E2B_OPTF_REQUIRED, "VOLUME:PATH, a local file or '-' (standard output)",
                  E2B_COMPLETE_FILE),
    E2B_OPT_END,
};

int cmd_volume_cp(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_free_ char *svol = NULL, *dvol = NULL;
    const char *src = e2b_args_str(args, "source"), *dst = e2b_args_str(args, "destination");
    const char *spath = NULL, *dpath = NULL;
    bool up = split_remote(dst, &dvol, &dpath), down = split_remote(src, &svol, &spath);
    if (up == down)
        return e2b_usage_error("volume cp", "exactly one of SOURCE and DESTINATION is VOLUME:PATH");
    if (e2b_cli_open_backend(ctx, &b))
        return 1;
    if (up) {
        _cleanup_close_ int fd = STREQ(src, "-") ? dup(0) : open(src, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return fail_sys(errno, "open", src);
        _cleanup_json_ json_t *e = NULL;
        if (b->ops->volumes.write(b, dvol, dpath, fd, &e, &err) < 0)
            return e2b_fail(err);
        if (ctx->json)
            e2b_object_print(e, entry_cols, stdout, true);
        return 0;
    }
    bool to_stdout = STREQ(dst, "-");
    _cleanup_free_ char *tmp = to_stdout ? NULL : xasprintf("%s.e2b-part", dst);
    _cleanup_close_ int fd = to_stdout ? dup(1) : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail_sys(errno, "write", to_stdout ? "standard output" : tmp);
    if (b->ops->volumes.read(b, svol, spath, fd, &err) < 0) {
        if (tmp)
            unlink(tmp);
        return e2b_fail(err);
    }
    if (tmp && (fsync(fd) < 0 || rename(tmp, dst) < 0)) {
        unlink(tmp);
        return fail_sys(errno, "write", dst);
    }
    return 0;
}
