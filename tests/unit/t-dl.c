/* t-dl.c - libraries opened on first use: good loads, a missing library or
 * symbol as an error naming it, the redirected calls of dl-git.h. */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "dl-git.h"
#include "dl.h"
#include "tap.h"

static int after_calls;
static int count_after(void)
{
    after_calls++;
    return 0;
}

int main(void)
{
    struct e2b_error *err = NULL;

    /* A library that is there: slots filled, after_load once. */
    static const char *const z_names[] = {"zlibVersion", "crc32"};
    struct {
        const char *(*zlibVersion)(void);
        unsigned long (*crc32)(unsigned long, const unsigned char *, unsigned);
    } z = {0};
    struct e2b_dl_lib zlib = {.soname = "libz.so.1", .names = z_names, .slots = (void **)&z,
                              .count = 2, .after_load = count_after};
    ok(e2b_dl_load(&zlib, &err) == 0, "libz loads");
    ok(z.zlibVersion && strcmp(z.zlibVersion(), zlibVersion()) == 0, "its functions are callable");
    ok(e2b_dl_load(&zlib, &err) == 0 && after_calls == 1, "a second load does nothing (after_load ran once)");

    /* A library that is not there. */
    void *slot = NULL;
    static const char *const one[] = {"f"};
    struct e2b_dl_lib missing = {.soname = "libe2b-no-such.so.9", .names = one, .slots = &slot, .count = 1};
    int r = e2b_dl_load(&missing, &err);
    ok(r < 0 && err && strstr(err->msg, "cannot load libe2b-no-such.so.9"), "a missing library is an error naming it: %s",
       err ? err->msg : "(none)");
    e2b_error_free(err);
    err = NULL;

    /* A library without a function e2b needs (another version). */
    static const char *const wrong[] = {"zlibVersion", "e2b_no_such_function"};
    void *slots2[2] = {0};
    struct e2b_dl_lib old = {.soname = "libz.so.1", .names = wrong, .slots = slots2, .count = 2};
    r = e2b_dl_load(&old, &err);
    ok(r < 0 && err && strstr(err->msg, "e2b_no_such_function"),
       "a missing function is an error naming it: %s", err ? err->msg : "(none)");
    ok(!slots2[0] && !old.ready, "and leaves the library unloaded");
    e2b_error_free(err);
    err = NULL;

    /* The redirected calls of dl-git.h load libgit2 on first use. */
    ok(!e2b_git_lib.ready, "libgit2's table is empty before first use");
    const git_error *e = git_error_last(); /* no error yet: NULL, but the call went through */
    ok(e == NULL && e2b_git_lib.ready && e2b_git_lib.slots[0], "a first call loads it and fills the table");
    ok(e2b_git_load(&err) == 0, "an explicit load after that is a no-op");
    return tap_done();
}
