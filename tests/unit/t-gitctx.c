/* t-gitctx.c - git build contexts: spec parsing and clones of a local repo. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "gitctx.h"
#include "tap.h"

static char *slurp(const char *dir, const char *rel)
{
    char *p = e2b_path_join(dir, rel), *d = NULL;
    size_t n;
    struct e2b_error *err = NULL;
    if (e2b_read_file(p, &d, &n, &err) < 0) {
        e2b_error_free(err);
        d = NULL;
    }
    free(p);
    return d;
}

int main(void)
{
    struct e2b_git_spec s;
    struct e2b_error *err = NULL;
    ok(e2b_git_context_is("https://example.com/r.git"), "https .git");
    ok(e2b_git_context_is("https://example.com/r#main"), "https with #ref");
    ok(!e2b_git_context_is("https://example.com/ctx.tar.gz"), "plain URL is not git");
    ok(e2b_git_context_is("file:///srv/r.git#v1:sub"), "file://");
    ok(!e2b_git_context_is("."), "a directory");
    ok(e2b_git_spec_parse("file:///r.git#v1:a/b", &s, &err) == 0, "parse");
    is_str(s.url, "file:///r.git", "url");
    is_str(s.ref, "v1", "ref");
    is_str(s.subdir, "a/b", "subdir");
    e2b_git_spec_free(&s);
    ok(e2b_git_spec_parse("file:///r.git#:sub", &s, &err) == 0 && s.ref == NULL, "subdir only");
    e2b_git_spec_free(&s);
    ok(e2b_git_spec_parse("file:///r.git#main:../x", &s, &err) < 0, "../ subdir refused");
    e2b_error_free(err);
    err = NULL;

    if (system("command -v git >/dev/null") != 0) {
        diag("no git: clone tests skipped");
        return tap_done();
    }
    char tmp[] = "/tmp/t-gitctx-XXXXXX";
    ok(mkdtemp(tmp) != NULL, "tmp");
    char *cmd;
    if (asprintf(&cmd,
                 "set -e; cd %s; git init -q -b main repo; cd repo; git config user.email t@t;"
                 "git config user.name t; mkdir sub; echo one > sub/f; git add .; git commit -qm 1;"
                 "git tag v1; echo two > sub/f; git commit -qam 2; git checkout -q -b other;"
                 "echo three > sub/f; git commit -qam 3; git checkout -q main",
                 tmp) < 0)
        return 1;
    ok(system(cmd) == 0, "test repository");
    free(cmd);

    char *arg, *checkout, *ctx, *f;
    const char *cases[][2] = {{"#v1:sub", "one\n"}, {"#main:sub", "two\n"}, {"#other:sub", "three\n"}};
    for (size_t i = 0; i < 3; i++) {
        if (asprintf(&arg, "file://%s/repo%s", tmp, cases[i][0]) < 0)
            return 1;
        ok(e2b_git_spec_parse(arg, &s, &err) == 0, "parse %s", cases[i][0]);
        int r = e2b_git_fetch_context(&s, tmp, &checkout, &ctx, &err);
        ok(r == 0, "clone %s%s%s", cases[i][0], err ? ": " : "", err ? err->msg : "");
        if (r == 0) {
            f = slurp(ctx, "f");
            is_str(f, cases[i][1], "content at %s", cases[i][0]);
            free(f);
            e2b_rm_rf(checkout, &err);
            free(checkout);
            free(ctx);
        }
        e2b_git_spec_free(&s);
        free(arg);
    }
    if (asprintf(&arg, "%s/repo#v1", tmp) < 0)
        return 1;
    ok(e2b_git_context_is(arg), "local repo path with #ref");
    ok(e2b_git_spec_parse(arg, &s, &err) == 0 && e2b_git_fetch_context(&s, tmp, &checkout, &ctx, &err) == 0,
       "clone a local path");
    f = slurp(ctx, "sub/f");
    is_str(f, "one\n", "local path at tag");
    free(f);
    e2b_rm_rf(checkout, &err);
    free(checkout);
    free(ctx);
    e2b_git_spec_free(&s);
    free(arg);

    if (asprintf(&arg, "file://%s/repo#nosuchref", tmp) < 0)
        return 1;
    e2b_git_spec_parse(arg, &s, &err);
    ok(e2b_git_fetch_context(&s, tmp, &checkout, &ctx, &err) < 0 && strstr(err->msg, "nosuchref"),
       "unknown ref");
    e2b_error_free(err);
    err = NULL;
    e2b_git_spec_free(&s);
    free(arg);
    e2b_rm_rf(tmp, &err);
    return tap_done();
}
