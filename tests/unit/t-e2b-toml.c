/* t-e2b-toml.c - e2b.toml reading and the template_id write-back. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2b-toml.h"
#include "fsutil.h"
#include "tap.h"

int main(void)
{
    struct e2b_toml t;
    struct e2b_error *err = NULL;
    ok(e2b_toml_parse(&t, "# header\nid = \"old\"\ntemplate_id = \"abc\"\ndockerfile = \"e2b.Dockerfile\"\n"
                          "name = 'my-app'\nstart_cmd = \"python3 -m http.server \\\"8000\\\"\"\n"
                          "cpu_count = 2 # two\nmemory_mb = 1024\nteam_id = \"t\"\nother = true\n",
                      &err) == 0, "parse");
    is_str(t.template_id, "abc", "template_id wins over id");
    is_str(t.template_name, "my-app", "old key name, literal string");
    is_str(t.start_cmd, "python3 -m http.server \"8000\"", "escapes");
    is_int(t.cpu_count, 2, "int with comment");
    is_int(t.memory_mb, 1024, "memory_mb");
    ok(t.ready_cmd == NULL, "unset stays NULL");
    e2b_toml_free(&t);

    ok(e2b_toml_parse(&t, "cpu_count = \"x\"\n", &err) < 0, "string for int refused");
    ok(err && strstr(err->msg, ":1:"), "error names the line");
    e2b_error_free(err);
    err = NULL;
    e2b_toml_free(&t);
    ok(e2b_toml_parse(&t, "\n\njunk\n", &err) < 0 && strstr(err->msg, ":3:"),
       "line 3 reported");
    e2b_error_free(err);
    err = NULL;
    e2b_toml_free(&t);

    char dir[] = "/tmp/t-toml-XXXXXX";
    ok(mkdtemp(dir) != NULL, "tmp dir");
    char *path = e2b_path_join(dir, "e2b.toml");
    ok(e2b_toml_set(path, "template_id", "new1", &err) == 0, "set in a new file");
    ok(e2b_toml_load(&t, path, false, &err) == 0 && t.template_id && !strcmp(t.template_id, "new1"),
       "read back");
    e2b_toml_free(&t);
    e2b_write_file_atomic(path, "id = \"old\"\ndockerfile = \"D\"\n", 27, 0644, &err);
    ok(e2b_toml_set(path, "template_id", "new2", &err) == 0, "replace old key");
    char *text;
    size_t len;
    e2b_read_file(path, &text, &len, &err);
    is_str(text, "template_id = \"new2\"\ndockerfile = \"D\"\n", "old key replaced, rest kept");
    free(text);
    ok(e2b_toml_load(&t, "/nonexistent/e2b.toml", true, &err) == 0, "optional missing file");
    e2b_toml_free(&t);
    unlink(path);
    rmdir(dir);
    free(path);
    return tap_done();
}
