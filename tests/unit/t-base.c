/* t-base.c - strbuf, error wrapping, atomic files, JSON helpers, output. */
#include "error.h"
#include "fsutil.h"
#include "json.h"
#include "output.h"
#include "strbuf.h"
#include "tap.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

int main(void)
{
    struct strbuf sb = STRBUF_INIT;
    is_str(sb.buf ? sb.buf : "", "", "empty strbuf");
    strbuf_addf(&sb, "%d-%s", 42, "x");
    strbuf_addch(&sb, '!');
    is_str(sb.buf, "42-x!", "addf and addch");
    strbuf_consume(&sb, 3);
    is_str(sb.buf, "x!", "consume");
    strbuf_reset(&sb);
    strbuf_add_shell_quoted(&sb, "it's");
    is_str(sb.buf, "'it'\\''s'", "shell quoting");
    strbuf_release(&sb);

    struct e2b_error *err = NULL;
    e2b_error_sys(&err, ENOENT, "cannot open '%s'", "x");
    e2b_error_wrap(&err, "cannot load template");
    is_str(err->msg, "cannot load template: cannot open 'x': No such file or directory", "wrap adds context");
    is_int(err->code, E2B_ERR_NOT_FOUND, "ENOENT maps to not found");
    is_int(e2b_error_exit_code(err), 1, "exit code 1");
    e2b_error_set(&err, E2B_ERR_USAGE, "ignored");
    ok(strstr(err->msg, "ignored") == NULL, "a second set keeps the first error");
    e2b_error_free(err), err = NULL;

    char dir[] = "/tmp/t-base.XXXXXX";
    ok(mkdtemp(dir) != NULL, "scratch dir");
    _cleanup_free_ char *deep = e2b_path_join(dir, "a/b/c");
    ok(e2b_mkdir_p(deep, 0700, &err) == 0, "mkdir -p");
    _cleanup_free_ char *f = e2b_path_join(deep, "f.json");
    ok(e2b_write_file_atomic(f, "{\"a\": 1}", 8, 0600, &err) == 0, "atomic write");
    struct stat st;
    ok(stat(f, &st) == 0 && (st.st_mode & 07777) == 0600, "mode 0600 exactly");
    json_t *j = NULL;
    ok(e2b_json_load_file(f, &j, &err) == 0 && e2b_json_int(j, "a", 0) == 1, "JSON round trip");
    json_decref(j);
    e2b_write_file_atomic(f, "{\n\"a\": 1,\n oops}", 16, 0600, &err);
    ok(e2b_json_load_file(f, &j, &err) < 0 && strstr(err->msg, ":3:"), "bad JSON error has the line");
    ok(err && strstr(err->msg, f), "bad JSON error names the file");
    e2b_error_free(err), err = NULL;
    _cleanup_free_ char *join = e2b_path_join("/", "/x");
    is_str(join, "/x", "join at root");
    /* a sparse copy keeps the holes and the bytes */
    _cleanup_free_ char *sparse = e2b_path_join(dir, "sparse"),
                        *sp2 = e2b_path_join(dir, "sparse.copy");
    int sfd = open(sparse, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ok(sfd >= 0 && ftruncate(sfd, 64 << 20) == 0 && pwrite(sfd, "head", 4, 0) == 4 &&
           pwrite(sfd, "tail", 4, (64 << 20) - 4) == 4 && close(sfd) == 0,
       "a 64 MiB file of two pieces");
    struct stat a, b;
    char tail[5] = "";
    int cfd = -1;
    ok(e2b_copy_file_sparse(sparse, sp2, 0600, &err) == 0 && stat(sparse, &a) == 0 &&
           stat(sp2, &b) == 0 && a.st_size == b.st_size && b.st_blocks <= a.st_blocks + 64 &&
           (cfd = open(sp2, O_RDONLY | O_CLOEXEC)) >= 0 &&
           pread(cfd, tail, 4, (64 << 20) - 4) == 4 && STREQ(tail, "tail"),
       "a sparse copy: same size and bytes, no more blocks");
    if (cfd >= 0)
        close(cfd);
    ok(e2b_copy_file_sparse("/nonexistent", sp2, 0600, &err) < 0 &&
           strstr(err->msg, "/nonexistent"),
       "a copy of nothing names it");
    e2b_error_free(err), err = NULL;
    ok(e2b_rm_rf(dir, &err) == 0 && access(dir, F_OK) < 0, "rm -rf");

    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (full >= 0) {
        ok(e2b_write_fd(full, "x", 1, "stdout", &err) < 0 && err && err->sys_errno == ENOSPC,
           "a write to a full disk fails");
        is_str(err ? err->msg : "", "cannot write to stdout: No space left on device", "and says where");
        e2b_error_free(err), err = NULL;
        close(full);
    }
    int pp[2];
    char big[200000], back[sizeof(big)];
    memset(big, 'z', sizeof(big));
    ok(pipe(pp) == 0 && fcntl(pp[1], F_SETPIPE_SZ, 4096) >= 0, "a small pipe");
    pid_t reader = fork();
    if (reader == 0) {
        close(pp[1]);
        size_t got = 0;
        for (ssize_t n; got < sizeof(back) && (n = read(pp[0], back + got, sizeof(back) - got)) > 0;)
            got += (size_t)n;
        _exit(got == sizeof(back) && memcmp(back, big, got) == 0 ? 0 : 1);
    }
    close(pp[0]);
    ok(e2b_write_fd(pp[1], big, sizeof(big), "the pipe", &err) == 0, "a pipe takes it all, in pieces");
    close(pp[1]);
    int wst = 0;
    ok(waitpid(reader, &wst, 0) == reader && WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "every byte arrived");

    int sp[2];
    ok(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, "a socket pair");
    close(sp[1]);
    is_int(e2b_send_all(sp[0], "x", 1), -EPIPE,
           "send to a peer gone: -EPIPE, and no SIGPIPE killed us");
    close(sp[0]);
    FILE *tf = tmpfile();
    int tfd = tf ? fileno(tf) : -1;
    char at[8] = { 0 };
    ok(tfd >= 0 && e2b_write_all(tfd, "abcdef", 6) == 0 && e2b_pwrite_all(tfd, "XY", 2, 2) == 0 &&
           pread(tfd, at, 6, 0) == 6 && lseek(tfd, 0, SEEK_CUR) == 6,
       "pwrite at an offset leaves the file position");
    is_str(at, "abXYef", "and writes there");
    if (tf)
        fclose(tf);
    is_int(e2b_write_all(-1, "x", 1), -EBADF, "a bad fd: -errno");

    char *words[] = { "a", "b c", NULL };
    json_t *ja = e2b_json_strv(words);
    _cleanup_free_ char *jtext = e2b_json_dump(ja, 0);
    is_str(jtext, "[\"a\", \"b c\"]", "string vector to a JSON array");
    char **back_v = e2b_json_to_strv(ja);
    ok(back_v && e2b_strv_len(back_v) == 2 && STREQ(back_v[1], "b c"), "and back");
    e2b_strv_free(back_v);
    json_decref(ja);
    ja = e2b_json_strv(NULL);
    ok(json_is_array(ja) && json_array_size(ja) == 0, "no vector: an empty array");
    back_v = e2b_json_to_strv(ja);
    ok(back_v && !back_v[0], "an empty array: an empty vector, not NULL");
    e2b_strv_free(back_v);
    json_decref(ja);
    ja = json_pack("[s, i]", "a", 1);
    ok(!e2b_json_to_strv(ja) && !e2b_json_to_strv(NULL), "not an array of strings: NULL");
    json_decref(ja);

    static const struct e2b_column cols[] = {{"id", "ID"}, {"n", "N"}, {NULL, NULL}};
    struct e2b_table *t = e2b_table_new(cols);
    json_t *row = e2b_table_add_row(t);
    json_object_set_new(row, "id", json_string("abc"));
    json_object_set_new(row, "n", json_integer(7));
    json_object_set_new(row, "extra", json_string("json only"));
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    e2b_table_print(t, mf, false);
    fclose(mf);
    is_str(buf, "ID   N\nabc  7\n", "text table");
    free(buf);
    mf = open_memstream(&buf, &len);
    e2b_table_print(t, mf, true);
    fclose(mf);
    ok(strstr(buf, "\"extra\": \"json only\"") != NULL, "JSON output has every field");
    free(buf);
    e2b_table_free(t);
    return tap_done();
}
