/* t-dockerignore.c - .dockerignore patterns and context path checks. */
#include <stdlib.h>

#include "build-context.h"
#include "tap.h"

int main(void)
{
    ok(e2b_glob_match("*.txt", "a.txt"), "* in one component");
    ok(!e2b_glob_match("*.txt", "d/a.txt"), "* stops at /");
    ok(e2b_glob_match("**/*.txt", "a.txt"), "**/ matches zero dirs");
    ok(e2b_glob_match("**/*.txt", "x/y/a.txt"), "**/ matches many dirs");
    ok(e2b_glob_match("a/**", "a/b/c"), "trailing **");
    ok(e2b_glob_match("fil?", "file"), "? one char");
    ok(!e2b_glob_match("fil?", "fil/"), "? not /");
    ok(e2b_glob_match("[a-c]x", "bx") && !e2b_glob_match("[a-c]x", "dx"), "classes");
    ok(e2b_glob_match("[!a]x", "bx") && !e2b_glob_match("[!a]x", "ax"), "negated class");

    struct e2b_ignore ig;
    e2b_ignore_parse(&ig, "# comment\n\n/node_modules\n*.log\n!keep.log\n./build/\n"
                          "docs/**/*.md\n!docs/README.md\n");
    is_int(ig.n, 6, "comments and blanks skipped");
    ok(e2b_ignore_match(&ig, "node_modules"), "leading / dropped");
    ok(e2b_ignore_match(&ig, "node_modules/x/y.js"), "dir pattern covers children");
    ok(e2b_ignore_match(&ig, "a.log"), "*.log");
    ok(!e2b_ignore_match(&ig, "keep.log"), "! exception");
    ok(!e2b_ignore_match(&ig, "sub/a.log"), "*.log is rooted at the context");
    ok(e2b_ignore_match(&ig, "build/out.o"), "./build/ cleaned");
    ok(e2b_ignore_match(&ig, "docs/a/b/c.md"), "** in the middle");
    ok(!e2b_ignore_match(&ig, "docs/README.md"), "later exception wins");
    ok(!e2b_ignore_match(&ig, "src/main.c"), "unmatched kept");
    e2b_ignore_free(&ig);

    e2b_ignore_parse(&ig, "*\n!src\n");
    ok(!e2b_ignore_match(&ig, "src/a.c"), "exclude all but src");
    ok(e2b_ignore_match(&ig, "Dockerfile"), "everything else excluded");
    e2b_ignore_free(&ig);

    struct e2b_error *err = NULL;
    char *c = e2b_context_clean("./a/../b/./c", &err);
    is_str(c, "b/c", "clean folds . and ..");
    free(c);
    c = e2b_context_clean("/etc/passwd", &err);
    is_str(c, "etc/passwd", "absolute sources are context-relative");
    free(c);
    ok(e2b_context_clean("../secret", &err) == NULL, "../ refused");
    e2b_error_free(err);
    err = NULL;
    ok(e2b_context_clean("a/../../x", &err) == NULL, "a/../../ refused");
    e2b_error_free(err);
    /* may an exception reach below an excluded directory? */
    struct e2b_ignore ex = {0};
    e2b_ignore_parse(&ex, "vendor\njunk\n!vendor/keep\n");
    ok(e2b_ignore_may_include_below(&ex, "vendor"), "!vendor/keep reaches below vendor");
    ok(!e2b_ignore_may_include_below(&ex, "junk"), "nothing reaches below junk");
    ok(!e2b_ignore_may_include_below(&ex, "vendor/keep2"), "nor below a sibling of keep");
    ok(e2b_ignore_may_include_below(&ex, "./vendor/"), "names are cleaned first");
    e2b_ignore_free(&ex);
    e2b_ignore_parse(&ex, "*\n!**/*.keep\n");
    ok(e2b_ignore_may_include_below(&ex, "any/dir"), "a leading ** may reach anywhere");
    e2b_ignore_free(&ex);
    e2b_ignore_parse(&ex, "build\n");
    ok(!e2b_ignore_may_include_below(&ex, "build"), "no exceptions at all");
    e2b_ignore_free(&ex);
    return tap_done();
}
