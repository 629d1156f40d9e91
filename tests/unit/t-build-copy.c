/* t-build-copy.c - COPY's file work: paths resolved inside a tree, symlinks
 * copied and never followed out of it, --chmod octal and symbolic,
 * --exclude, destination symlinks followed within the image. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build-copy.h"
#include "fsutil.h"
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

static void put(const char *dir, const char *rel, const char *text)
{
    char *p = e2b_path_join(dir, rel);
    struct e2b_error *err = NULL;
    char *slash = strrchr(p, '/');
    *slash = '\0';
    e2b_mkdir_p(p, 0755, &err);
    *slash = '/';
    e2b_write_file_atomic(p, text, strlen(text), 0644, &err);
    e2b_error_free(err);
    free(p);
}

static void link_at(const char *dir, const char *rel, const char *target)
{
    char *p = e2b_path_join(dir, rel);
    if (symlink(target, p) < 0)
        perror(p);
    free(p);
}

static mode_t sym(const char *spec, mode_t m, bool dir)
{
    struct e2b_chmod c;
    struct e2b_error *err = NULL;
    if (e2b_chmod_parse(spec, &c, &err) < 0) {
        diag("%s", err->msg);
        e2b_error_free(err);
        return (mode_t)-1;
    }
    mode_t r = e2b_chmod_apply(&c, m, dir);
    e2b_chmod_free(&c);
    return r;
}

static bool bad_chmod(const char *spec)
{
    struct e2b_chmod c;
    struct e2b_error *err = NULL;
    int r = e2b_chmod_parse(spec, &c, &err);
    bool bad = r < 0 && err && strstr(err->msg, spec);
    e2b_error_free(err);
    if (r == 0)
        e2b_chmod_free(&c);
    return bad;
}

int main(void)
{
    /* --chmod */
    is_int(sym("0640", 0777, false), 0640, "octal mode replaces");
    is_int(sym("u+x", 0644, false), 0744, "u+x");
    is_int(sym("go-w", 0666, false), 0644, "go-w");
    is_int(sym("a=rX", 0755, false), 0555, "a=rX keeps x of an executable");
    is_int(sym("a=rX", 0644, false), 0444, "a=rX: no x for a plain file");
    is_int(sym("a=rX", 0700, true), 0555, "a=rX: x for a directory");
    is_int(sym("u+x,g=r,o=", 0666, false), 0740, "several clauses");
    is_int(sym("+x", 0600, false), 0711, "no who means all");
    is_int(sym("u+s,+t", 0755, false), 05755, "setuid and sticky");
    is_int(sym("u-w+x", 0644, false), 0544, "two operations in one clause");
    ok(bad_chmod("9"), "9 is not octal");
    ok(bad_chmod("010000"), "beyond 7777");
    ok(bad_chmod("u+q"), "unknown permission letter");
    ok(bad_chmod("x"), "no operator");
    ok(bad_chmod(""), "empty");

    char top[] = "/tmp/t-build-copy-XXXXXX";
    ok(mkdtemp(top) != NULL, "scratch dir");
    char *ctx = e2b_path_join(top, "ctx"), *img = e2b_path_join(top, "img"), *host = e2b_path_join(top, "host");
    struct e2b_error *err = NULL;
    e2b_mkdir_p(ctx, 0755, &err);
    e2b_mkdir_p(img, 0755, &err);
    /* "the host": files outside both trees that nothing may read or write */
    put(host, "secret", "host secret\n");
    put(ctx, "host/secret", "context secret\n");
    link_at(ctx, "up", "../../../../../../../../..");
    link_at(ctx, "abs", host);
    put(ctx, "tree/file", "data\n");
    put(ctx, "tree/skip.log", "log\n");
    put(ctx, "tree/sub/deep.log", "log\n");
    char *abs_secret = e2b_path_join(host, "secret");
    link_at(ctx, "tree/out", abs_secret);
    /* the image: merged /usr and an absolute /var/run -> /run, as Debian */
    char *d = e2b_path_join(img, "usr/lib");
    e2b_mkdir_p(d, 0755, &err);
    free(d);
    d = e2b_path_join(img, "run");
    mkdir(d, 0755);
    free(d);
    d = e2b_path_join(img, "var");
    mkdir(d, 0755);
    free(d);
    link_at(img, "lib", "usr/lib");
    link_at(img, "var/run", "/run");
    link_at(img, "escape", host);

    int cfd = open(ctx, O_PATH | O_DIRECTORY | O_CLOEXEC), ifd = open(img, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ok(cfd >= 0 && ifd >= 0, "trees open");

    /* sources resolve inside the context */
    char *up_host = xasprintf("up%s/secret", host);
    int fd = e2b_tree_open(cfd, up_host, O_RDONLY);
    ok(fd < 0, "a relative climb does not leave the context (%s)", up_host);
    if (fd >= 0)
        close(fd);
    fd = e2b_tree_open(cfd, "abs/secret", O_PATH);
    ok(fd < 0, "an absolute symlink resolves inside the context: abs -> %s is not there", host);
    if (fd >= 0)
        close(fd);
    fd = e2b_tree_open(cfd, "/up/host/secret", O_PATH);
    ok(fd >= 0, "up/host/secret resolves to the context's own host/secret");
    struct e2b_copy_opts co = {.root_owned = true};
    ok(fd >= 0 && e2b_copy_tree(&co, fd, "up/host/secret", ifd, "/stolen", &err) == 0, "copied");
    char *s = slurp(img, "stolen");
    is_str(s, "context secret\n", "the context's file, not the host's");
    free(s);
    if (fd >= 0)
        close(fd);

    /* a tree: symlinks copied as symlinks, --exclude, destination through the image's symlinks */
    struct e2b_ignore ex = {0};
    e2b_ignore_parse(&ex, "*.log\n");
    co.exclude = &ex;
    fd = e2b_tree_open(cfd, "tree", O_PATH);
    ok(fd >= 0 && e2b_copy_tree(&co, fd, "tree", ifd, "/lib/t", &err) == 0, "tree copied to /lib/t");
    if (err)
        diag("%s", err->msg);
    char *t = e2b_path_join(img, "usr/lib/t/out"), lt[256] = "";
    ssize_t n = readlink(t, lt, sizeof(lt) - 1);
    lt[n > 0 ? n : 0] = '\0';
    is_str(lt, abs_secret, "the symlink is copied, pointing where it pointed");
    free(t);
    s = slurp(img, "usr/lib/t/file");
    is_str(s, "data\n", "landed in /usr/lib through the image's /lib symlink");
    free(s);
    t = e2b_path_join(img, "usr/lib/t/skip.log");
    ok(access(t, F_OK) < 0, "--exclude *.log left out the top-level log");
    free(t);
    t = e2b_path_join(img, "usr/lib/t/sub/deep.log");
    ok(access(t, F_OK) == 0, "*.log does not cross directories");
    free(t);
    struct stat st;
    t = e2b_path_join(img, "lib");
    ok(lstat(t, &st) == 0 && S_ISLNK(st.st_mode), "/lib is still a symlink");
    free(t);
    if (fd >= 0)
        close(fd);
    e2b_ignore_free(&ex);
    co.exclude = NULL;

    /* an absolute symlink in the image is followed inside it */
    fd = e2b_tree_open(cfd, "tree/file", O_PATH);
    ok(fd >= 0 && e2b_copy_tree(&co, fd, "tree/file", ifd, "/var/run/app.pid", &err) == 0, "to /var/run/app.pid");
    s = slurp(img, "run/app.pid");
    is_str(s, "data\n", "landed in the image's /run");
    free(s);
    ok(fd >= 0 && e2b_copy_tree(&co, fd, "tree/file", ifd, "/escape/pwned", &err) == 0,
       "to /escape/pwned (escape -> the host dir)");
    t = e2b_path_join(host, "pwned");
    ok(access(t, F_OK) < 0, "nothing written on the host through the image's symlink");
    free(t);
    t = xasprintf("%s%s/pwned", img, host);
    ok(access(t, F_OK) == 0, "it went to the image's own %s", host);
    free(t);
    /* a file never replaces an existing directory */
    e2b_error_free(err);
    err = NULL;
    bool refused = fd >= 0 && e2b_copy_tree(&co, fd, "tree/file", ifd, "/usr", &err) < 0 && err &&
                   strstr(err->msg, "directory");
    ok(refused, "a file over /usr is refused: %s", err ? err->msg : "");
    if (fd >= 0)
        close(fd);

    close(cfd);
    close(ifd);
    e2b_error_free(err);
    err = NULL;
    e2b_rm_rf(top, &err);
    e2b_error_free(err);
    free(ctx);
    free(img);
    free(host);
    free(abs_secret);
    free(up_host);
    return tap_done();
}
