/* t-envd-paths.c - path cleaning and resolution, permission strings, users. */
#include "envd-fs.h"
#include "envd-users.h"
#include "tap.h"

#include <sys/stat.h>

static void clean(const char *in, const char *want)
{
    char *got = e2b_path_clean(in);
    is_str(got, want, "clean '%s'", in);
    free(got);
}

int main(void)
{
    clean("/", "/");
    clean("//a//b/", "/a/b");
    clean("/a/./b/../c", "/a/c");
    clean("/../../x", "/x");
    clean("/a/b/../../..", "/");
    clean("/a/..b/c", "/a/..b/c");
    clean("/.hidden/./x", "/.hidden/x");

    struct e2b_user u = {.name = "user", .home = "/home/user"};
    struct e2b_error *err = NULL;
    char *p = e2b_envd_resolve_path("", &u, NULL, &err);
    is_str(p, "/home/user", "empty is home");
    free(p);
    p = e2b_envd_resolve_path("", &u, "/work", &err);
    is_str(p, "/work", "empty is the default workdir when set");
    free(p);
    p = e2b_envd_resolve_path("~/x/../y", &u, NULL, &err);
    is_str(p, "/home/user/y", "~ expands");
    free(p);
    p = e2b_envd_resolve_path("rel/f.txt", &u, "/work", &err);
    is_str(p, "/home/user/rel/f.txt", "relative joins home");
    free(p);
    p = e2b_envd_resolve_path("../../etc/passwd", &u, NULL, &err);
    is_str(p, "/etc/passwd", "../ resolved lexically");
    free(p);
    p = e2b_envd_resolve_path("~other/x", &u, NULL, &err);
    ok(!p && err && err->code == E2B_ERR_INVALID, "~other refused");
    e2b_error_free(err);
    err = NULL;

    char m[16];
    e2b_mode_string(S_IFREG | 0644, m);
    is_str(m, "-rw-r--r--", "regular file");
    e2b_mode_string(S_IFDIR | 0755, m);
    is_str(m, "drwxr-xr-x", "directory");
    e2b_mode_string(S_IFDIR | S_ISVTX | 0777, m);
    is_str(m, "dtrwxrwxrwx", "sticky directory (Go style)");
    e2b_mode_string(S_IFLNK | 0777, m);
    is_str(m, "Lrwxrwxrwx", "symlink (Go style)");
    e2b_mode_string(S_IFREG | S_ISUID | 0755, m);
    is_str(m, "urwxr-xr-x", "setuid");

    char dir[] = "/tmp/t-envd-users.XXXXXX";
    if (!mkdtemp(dir))
        tap_skip_all("no temp dir");
    char *pw = xasprintf("%s/passwd", dir), *gr = xasprintf("%s/group", dir);
    FILE *f = fopen(pw, "w");
    fputs("root:x:0:0:root:/root:/bin/bash\n# comment\nbroken line\nuser:x:1000:1000::/home/user:\n"
          "svc:x:999:999:svc:/:/usr/sbin/nologin\n",
          f);
    fclose(f);
    f = fopen(gr, "w");
    fputs("root:x:0:\nuser:x:1000:\ndocker:x:998:user,svc\nwheel:x:10:user\n", f);
    fclose(f);
    e2b_users_set_files(pw, gr);
    struct e2b_user *got = NULL;
    ok(e2b_user_lookup("user", &got, &err) == 0, "look up user");
    if (got) {
        is_int(got->uid, 1000, "uid");
        is_int(got->gid, 1000, "gid");
        is_str(got->home, "/home/user", "home");
        is_str(got->shell, "/bin/sh", "empty shell defaults");
        is_int(got->ngroups, 3, "primary plus two supplementary groups");
        e2b_user_free(got);
        got = NULL;
    }
    ok(e2b_user_lookup("0", &got, &err) == 0 && got && STREQ(got->name, "root"), "numeric name is a uid");
    e2b_user_free(got);
    got = NULL;
    ok(e2b_user_lookup("nobody-here", &got, &err) < 0 && err && err->code == E2B_ERR_AUTH, "unknown user");
    e2b_error_free(err);
    err = NULL;
    is_str(e2b_user_name(999), "svc", "uid to name");
    is_str(e2b_user_name(4242), "4242", "unknown uid as number");
    is_str(e2b_group_name(998), "docker", "gid to name");
    is_str(e2b_group_name(4242), "4242", "unknown gid as number");
    /* the files are re-read when they change */
    f = fopen(pw, "a");
    fputs("late:x:2000:2000::/home/late:/bin/sh\n", f);
    fclose(f);
    ok(e2b_user_lookup("late", &got, &err) == 0, "a user added later is found");
    e2b_user_free(got);
    e2b_users_set_files(NULL, NULL);
    unlink(pw);
    unlink(gr);
    rmdir(dir);
    free(pw);
    free(gr);
    return tap_done();
}
