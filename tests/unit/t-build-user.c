/* t-build-user.c - the `user` account added to a root tree by file edits. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build-user.h"
#include "fsutil.h"
#include "tap.h"

static char *slurp(const char *root, const char *rel)
{
    char *p = e2b_path_join(root, rel), *d = NULL;
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
    char root[] = "/tmp/t-user-XXXXXX";
    struct e2b_error *err = NULL;
    ok(mkdtemp(root) != NULL, "root");
    char *etc = e2b_path_join(root, "etc");
    e2b_mkdir_p(etc, 0755, &err);
    char *f = e2b_path_join(etc, "passwd");
    const char *pw = "root:x:0:0:root:/root:/bin/sh\nfoo:x:1000:1000::/home/foo:/bin/sh\n";
    e2b_write_file_atomic(f, pw, strlen(pw), 0644, &err);
    free(f);
    f = e2b_path_join(etc, "group");
    const char *gr = "root:x:0:\nsudo:x:27:\nfoo:x:1000:\n";
    e2b_write_file_atomic(f, gr, strlen(gr), 0644, &err);
    free(f);
    f = e2b_path_join(etc, "sudoers.d");
    mkdir(f, 0755);
    free(f);
    f = e2b_path_join(etc, "skel");
    mkdir(f, 0755);
    free(f);
    f = e2b_path_join(etc, "skel/.bashrc");
    e2b_write_file_atomic(f, "PS1=x\n", 6, 0644, &err);
    free(f);
    /* a symlink that would lead outside must not be followed */
    f = e2b_path_join(root, "home");
    symlink("/tmp", f);
    free(f);
    f = e2b_path_join(root, "tmp");
    mkdir(f, 01777);
    free(f);

    struct e2b_user_info info;
    int r = e2b_root_add_user(root, "user", &info, &err);
    ok(r == 0, "add user%s%s", err ? ": " : "", err ? err->msg : "");
    ok(info.created && info.uid == 1001 && info.gid == 1001, "next free uid (%u)", info.uid);
    char *s = slurp(root, "etc/passwd");
    ok(s && strstr(s, "user:x:1001:1001::/home/user:/bin/sh\n"), "passwd line");
    free(s);
    s = slurp(root, "etc/group");
    ok(s && strstr(s, "sudo:x:27:user\n") && strstr(s, "user:x:1001:\n"), "group and sudo");
    free(s);
    s = slurp(root, "etc/shadow");
    ok(s && strncmp(s, "user:!:", 7) == 0, "shadow");
    free(s);
    s = slurp(root, "etc/sudoers.d/user-nopasswd");
    is_str(s, "user ALL=(ALL:ALL) NOPASSWD: ALL\n", "sudoers rule");
    free(s);
    ok(access("/tmp/user/.bashrc", F_OK) != 0, "home symlink not followed out");
    s = slurp(root, "tmp/user/.bashrc");
    is_str(s, "PS1=x\n", "skel copied into the root's /tmp/user (symlink resolved in root)");
    free(s);

    ok(e2b_root_add_user(root, "user", &info, &err) == 0 && !info.created, "second run: exists");
    s = slurp(root, "etc/group");
    ok(s && strstr(s, "sudo:x:27:user\n"), "not added twice");
    free(s);

    uid_t u;
    gid_t g;
    ok(e2b_root_lookup_uid(root, "foo", &u, &g, &err) == 0 && u == 1000 && g == 1000, "lookup user");
    ok(e2b_root_lookup_gid(root, "sudo", &g, &err) == 0 && g == 27, "lookup group");
    ok(e2b_root_lookup_uid(root, "nobody", &u, &g, &err) < 0, "unknown user");
    e2b_error_free(err);
    err = NULL;
    ok(e2b_root_write_marker(root, "x=1\n", &err) == 0, "/.e2b");

    char *cmd = NULL;
    if (asprintf(&cmd, "rm -rf '%s'", root) > 0 && system(cmd) != 0)
        diag("cleanup failed");
    free(cmd);
    free(etc);
    return tap_done();
}
