/* template.c - `e2b template list|delete|init` and `template tags
 * list|add|remove` (build is in template-build.c). */
#include "backend.h"
#include "cmd.h"
#include "config.h"
#include "fsutil.h"
#include "output.h"
#include "template-client.h"
#include "template-store.h"
#include "usage.h"

#include <sys/stat.h>

static const struct e2b_column template_cols[] = {
    {"templateID", "TEMPLATE ID"}, {"aliases", "NAME"},   {"cpuCount", "VCPUS"},
    {"memoryMB", "RAM MIB"},       {"diskSizeMB", "DISK MIB"}, {"buildStatus", "STATUS"},
    {"createdAt", "CREATED"},      {NULL, NULL},
};

const struct e2b_opt opts_template_list[] = {E2B_OPT_END};

int cmd_template_list(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    _cleanup_json_ json_t *list = NULL;
    if (e2b_backend_open(ctx->api_url, ctx->api_key, &b, &err) < 0 ||
        b->ops->templates.list(b, &list, &err) < 0)
        return e2b_fail(err);
    struct e2b_table *t = e2b_table_new(template_cols);
    size_t i;
    json_t *tpl;
    json_array_foreach(list, i, tpl) json_array_append(e2b_table_rows(t), tpl);
    e2b_table_print(t, stdout, ctx->json);
    e2b_table_free(t);
    return 0;
}

const struct e2b_opt opts_template_delete[] = {
    E2B_OPT_FLAG('y', "yes", "do not ask for confirmation"),
    E2B_OPT_ARGS_C("template", E2B_OPTF_REQUIRED, "template IDs or names to delete", E2B_COMPLETE_TEMPLATE),
    E2B_OPT_END,
};

int cmd_template_delete(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    _cleanup_backend_ struct e2b_backend *b = NULL;
    size_t n;
    const char *const *names = e2b_args_list(args, "template", &n);
    if (e2b_backend_open(ctx->api_url, ctx->api_key, &b, &err) < 0)
        return e2b_fail(err);
    if (!e2b_args_flag(args, "yes") && isatty(STDIN_FILENO)) {
        fprintf(stderr, "Delete %zu template%s? [y/N] ", n, n == 1 ? "" : "s");
        char answer[16] = "";
        if (!fgets(answer, sizeof(answer), stdin) || (answer[0] != 'y' && answer[0] != 'Y')) {
            fprintf(stderr, "Nothing deleted\n");
            return 1;
        }
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (b->ops->templates.delete(b, names[i], &err) < 0) {
            rc = e2b_fail(err);
            e2b_error_free(err);
            err = NULL;
            continue;
        }
        if (!ctx->quiet)
            fprintf(stderr, "Deleted template %s\n", names[i]);
    }
    return rc;
}

const struct e2b_opt opts_template_init[] = {
    E2B_OPT_STRING_C('p', "path", "DIR", "directory to write the files in (default: .)", E2B_COMPLETE_DIR),
    E2B_OPT_STRING('n', "name", "NAME", "template name (default: my-template)"),
    E2B_OPT_FLAG(0, "force", "overwrite existing files"),
    E2B_OPT_END,
};

static const char init_dockerfile[] =
    "# A sandbox template: build it with `e2b template build`.\n"
    "# Any Dockerfile works; RUN steps run in a build sandbox, without network\n"
    "# unless they ask for it (RUN --network=host, or `--network host`).\n"
    "FROM debian:12\n"
    "\n"
    "RUN --network=host apt-get update && apt-get install -y --no-install-recommends \\\n"
    "        ca-certificates curl git python3 sudo \\\n"
    "    && rm -rf /var/lib/apt/lists/*\n"
    "\n"
    "WORKDIR /home/user\n";

int cmd_template_init(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    const char *dir = e2b_args_str(args, "path") ? e2b_args_str(args, "path") : ".";
    const char *name = e2b_args_str(args, "name") ? e2b_args_str(args, "name") : "my-template";
    if (!e2b_template_name_valid(name))
        return e2b_usage_error("template init",
                               "invalid template name '%s': use lowercase letters, digits, - and _", name);
    _cleanup_free_ char *df = e2b_path_join(dir, "e2b.Dockerfile");
    _cleanup_free_ char *toml = e2b_path_join(dir, "e2b.toml");
    if (!e2b_args_flag(args, "force")) {
        const char *paths[] = {df, toml};
        for (size_t i = 0; i < 2; i++)
            if (access(paths[i], F_OK) == 0) {
                e2b_error_set(&err, E2B_ERR_EXISTS, "'%s' exists (use --force to overwrite it)", paths[i]);
                return e2b_fail(err);
            }
    }
    _cleanup_free_ char *toml_text = xasprintf(
        "# This is a config for E2B sandbox template.\n"
        "# Build it with `e2b template build`; start a sandbox with\n"
        "# `e2b sandbox create %s`.\n\n"
        "template_name = \"%s\"\n"
        "dockerfile = \"e2b.Dockerfile\"\n"
        "cpu_count = 2\n"
        "memory_mb = 1024\n",
        name, name);
    if (e2b_mkdir_p(dir, 0755, &err) < 0 ||
        e2b_write_file_atomic(df, init_dockerfile, strlen(init_dockerfile), 0644, &err) < 0 ||
        e2b_write_file_atomic(toml, toml_text, strlen(toml_text), 0644, &err) < 0)
        return e2b_fail(err);
    if (!ctx->quiet)
        fprintf(stderr, "Wrote %s and %s\n", df, toml);
    return 0;
}

/* ---- template tags list|add|remove: the store here, or the API ---- */

static const struct e2b_column tag_cols[] = {
    {"tag", "TAG"}, {"buildID", "BUILD ID"}, {"createdAt", "ASSIGNED"}, {NULL, NULL},
};

/* The API in use, or none (ep->api_url NULL): the local store. */
static int tags_endpoint(struct e2b_ctx *ctx, struct e2b_endpoint *ep, struct e2b_error **err)
{
    if (e2b_endpoint_resolve(ctx->api_url, ctx->api_key, ep, err) < 0)
        return -1;
    if (ep->api_url && !ep->api_key)
        return e2b_error_set(err, E2B_ERR_AUTH, "no API key for %s: run 'e2b auth login' or set E2B_API_KEY",
                             ep->api_url);
    return 0;
}

const struct e2b_opt opts_template_tags_list[] = {
    E2B_OPT_ARG_C("template", E2B_OPTF_REQUIRED, "template ID or name", E2B_COMPLETE_TEMPLATE),
    E2B_OPT_END,
};

int cmd_template_tags_list(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_endpoint ep = {0};
    _cleanup_json_ json_t *list = NULL;
    const char *name = e2b_args_str(args, "template");
    int r = tags_endpoint(ctx, &ep, &err);
    if (r == 0 && ep.api_url) {
        r = e2b_remote_tags_list(ep.api_url, ep.api_key, name, &list, &err);
    } else if (r == 0) {
        struct e2b_store store;
        r = e2b_store_open(&store, &err);
        if (r == 0) {
            r = e2b_store_tag_list(&store, name, &list, &err);
            e2b_store_close(&store);
        }
    }
    e2b_endpoint_release(&ep);
    if (r < 0)
        return e2b_fail(err);
    struct e2b_table *t = e2b_table_new(tag_cols);
    size_t i;
    json_t *tag;
    json_array_foreach(list, i, tag) json_array_append(e2b_table_rows(t), tag);
    e2b_table_print(t, stdout, ctx->json);
    e2b_table_free(t);
    return 0;
}

const struct e2b_opt opts_template_tags_add[] = {
    E2B_OPT_ARG_C("target", E2B_OPTF_REQUIRED, "NAME or NAME:TAG: the build to tag", E2B_COMPLETE_TEMPLATE),
    E2B_OPT_ARGS("tag", E2B_OPTF_REQUIRED, "tags to give it"),
    E2B_OPT_END,
};

int cmd_template_tags_add(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_endpoint ep = {0};
    size_t n;
    const char *const *tags = e2b_args_list(args, "tag", &n);
    _cleanup_free_ const char **tagv = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        tagv[i] = tags[i];
    const char *target = e2b_args_str(args, "target");
    _cleanup_free_ char *bid = NULL;
    int r = tags_endpoint(ctx, &ep, &err);
    if (r == 0 && ep.api_url) {
        _cleanup_json_ json_t *res = NULL;
        r = e2b_remote_tags_assign(ep.api_url, ep.api_key, target, tagv, &res, &err);
        if (r == 0)
            bid = xstrdup(e2b_json_str(res, "buildID") ?: "?");
    } else if (r == 0) {
        struct e2b_store store;
        r = e2b_store_open(&store, &err);
        if (r == 0) {
            r = e2b_store_tag_assign(&store, target, tagv, &bid, &err);
            e2b_store_close(&store);
        }
    }
    e2b_endpoint_release(&ep);
    if (r < 0)
        return e2b_fail(err);
    if (!ctx->quiet)
        fprintf(stderr, "Tagged build %s of %s: %zu tag%s\n", bid, target, n, n == 1 ? "" : "s");
    return 0;
}

const struct e2b_opt opts_template_tags_remove[] = {
    E2B_OPT_ARG_C("template", E2B_OPTF_REQUIRED, "template ID or name", E2B_COMPLETE_TEMPLATE),
    E2B_OPT_ARGS("tag", E2B_OPTF_REQUIRED, "tags to remove"),
    E2B_OPT_END,
};

int cmd_template_tags_remove(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_endpoint ep = {0};
    size_t n;
    const char *const *tags = e2b_args_list(args, "tag", &n);
    _cleanup_free_ const char **tagv = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        tagv[i] = tags[i];
    const char *name = e2b_args_str(args, "template");
    int r = tags_endpoint(ctx, &ep, &err);
    if (r == 0 && ep.api_url) {
        r = e2b_remote_tags_remove(ep.api_url, ep.api_key, name, tagv, &err);
    } else if (r == 0) {
        struct e2b_store store;
        r = e2b_store_open(&store, &err);
        if (r == 0) {
            r = e2b_store_tag_remove(&store, name, tagv, &err);
            e2b_store_close(&store);
        }
    }
    e2b_endpoint_release(&ep);
    if (r < 0)
        return e2b_fail(err);
    if (!ctx->quiet)
        fprintf(stderr, "Removed %zu tag%s from %s\n", n, n == 1 ? "" : "s", name);
    return 0;
}
