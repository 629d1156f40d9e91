/* gitctx.c - clone a git build context with libgit2. */
#include <errno.h>
#include "dl-git.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build-context.h"
#include "fsutil.h"
#include "gitctx.h"
#include "util.h"

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool local_repo(const char *path)
{
    _cleanup_free_ char *dotgit = e2b_path_join(path, ".git");
    _cleanup_free_ char *head = e2b_path_join(path, "HEAD");
    _cleanup_free_ char *objects = e2b_path_join(path, "objects");
    return is_dir(dotgit) || (access(head, F_OK) == 0 && is_dir(objects));
}

bool e2b_git_context_is(const char *arg)
{
    if (e2b_str_has_prefix(arg, "git@") || e2b_str_has_prefix(arg, "git://"))
        return true;
    const char *hash = strchr(arg, '#');
    size_t n = hash ? (size_t)(hash - arg) : strlen(arg);
    _cleanup_free_ char *base = xstrndup(arg, n);
    if (e2b_str_has_prefix(base, "http://") || e2b_str_has_prefix(base, "https://"))
        return e2b_str_has_suffix(base, ".git") || hash != NULL;
    if (e2b_str_has_prefix(base, "file://"))
        return true;
    return hash != NULL && local_repo(base);
}

int e2b_git_spec_parse(const char *arg, struct e2b_git_spec *spec, struct e2b_error **err)
{
    memset(spec, 0, sizeof(*spec));
    const char *hash = strchr(arg, '#');
    spec->url = hash ? xstrndup(arg, (size_t)(hash - arg)) : xstrdup(arg);
    const char *frag = hash ? hash + 1 : "";
    const char *colon = strchr(frag, ':');
    if (colon) {
        spec->ref = colon > frag ? xstrndup(frag, (size_t)(colon - frag)) : NULL;
        spec->subdir = e2b_context_clean(colon + 1, err);
        if (!spec->subdir) {
            e2b_git_spec_free(spec);
            return e2b_error_wrap(err, "git context subdirectory");
        }
    } else {
        spec->ref = *frag ? xstrdup(frag) : NULL;
        spec->subdir = xstrdup(".");
    }
    if (!*spec->url) {
        e2b_git_spec_free(spec);
        return e2b_error_set(err, E2B_ERR_USAGE, "%s: no repository", arg);
    }
    return 0;
}

void e2b_git_spec_free(struct e2b_git_spec *spec)
{
    free(spec->url);
    free(spec->ref);
    free(spec->subdir);
    memset(spec, 0, sizeof(*spec));
}

static int git_fail(struct e2b_error **err, const char *what)
{
    const git_error *e = git_error_last();
    return e2b_error_set(err, E2B_ERR_GENERIC, "%s: %s", what, e && e->message ? e->message : "failed");
}

int e2b_git_fetch_context(const struct e2b_git_spec *spec, const char *tmpdir,
                          char **ret_checkout, char **ret_context, struct e2b_error **err)
{
    if (e2b_git_load(err) < 0) /* also runs git_libgit2_init */
        return -1;
    _cleanup_free_ char *tmpl = e2b_path_join(tmpdir, "git-context-XXXXXX");
    if (!mkdtemp(tmpl))
        return e2b_error_sys(err, errno, "%s", tmpl);
    _cleanup_free_ char *dir = e2b_path_join(tmpl, "src");

    git_repository *repo = NULL;
    git_object *obj = NULL, *commit = NULL;
    char *ctx = NULL, *real = NULL, *realtop = NULL;
    git_clone_options opts;
    git_clone_options_init(&opts, GIT_CLONE_OPTIONS_VERSION);
    opts.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
    /* a local path clones like a URL */
    _cleanup_free_ char *url = NULL;
    if (spec->url[0] == '/' || e2b_str_has_prefix(spec->url, "./") || e2b_str_has_prefix(spec->url, "../")) {
        char *abs = realpath(spec->url, NULL);
        if (!abs) {
            e2b_error_sys(err, errno, "git context %s", spec->url);
            goto fail;
        }
        url = abs;
    } else {
        url = xstrdup(spec->url);
    }
    if (git_clone(&repo, url, dir, &opts) < 0) {
        git_fail(err, spec->url);
        goto fail;
    }
    if (spec->ref) {
        _cleanup_free_ char *remote = xasprintf("origin/%s", spec->ref);
        _cleanup_free_ char *tag = xasprintf("refs/tags/%s", spec->ref);
        if (git_revparse_single(&obj, repo, remote) < 0 && git_revparse_single(&obj, repo, tag) < 0 &&
            git_revparse_single(&obj, repo, spec->ref) < 0) {
            e2b_error_set(err, E2B_ERR_NOT_FOUND, "git context %s: no ref %s", spec->url, spec->ref);
            goto fail;
        }
    } else if (git_revparse_single(&obj, repo, "HEAD") < 0) {
        git_fail(err, spec->url);
        goto fail;
    }
    if (git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) < 0) {
        git_fail(err, spec->ref ? spec->ref : "HEAD");
        goto fail;
    }
    git_object_free(obj);
    obj = commit;
    git_checkout_options co;
    git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
    co.checkout_strategy = GIT_CHECKOUT_FORCE;
    if (git_checkout_tree(repo, obj, &co) < 0 ||
        git_repository_set_head_detached(repo, git_object_id(obj)) < 0) {
        git_fail(err, "git checkout");
        goto fail;
    }
    git_object_free(obj);
    git_repository_free(repo);
    obj = NULL;
    repo = NULL;
    /* the context is the checked-out tree, as BuildKit's: no .git in it */
    {
        _cleanup_free_ char *dotgit = e2b_path_join(dir, ".git");
        if (e2b_rm_rf(dotgit, err) < 0)
            goto fail;
    }

    /* the context must be a directory inside the checkout */
    ctx = e2b_path_join(dir, spec->subdir);
    real = realpath(ctx, NULL);
    realtop = realpath(dir, NULL);
    bool inside = real && realtop &&
                  (!strcmp(real, realtop) ||
                   (e2b_str_has_prefix(real, realtop) && real[strlen(realtop)] == '/'));
    if (!inside || !is_dir(real)) {
        e2b_error_set(err, E2B_ERR_NOT_FOUND, "git context %s: no directory %s in the checkout",
                      spec->url, spec->subdir);
        goto fail;
    }
    free(realtop);
    free(ctx);
    *ret_checkout = xstrdup(tmpl);
    *ret_context = real;
    return 0;

fail:
    free(ctx);
    free(real);
    free(realtop);
    git_object_free(obj);
    git_repository_free(repo);
    struct e2b_error *ignore = NULL;
    e2b_rm_rf(tmpl, &ignore);
    e2b_error_free(ignore);
    return -1;
}
