/* fuzz-e2b-toml.c - the e2b.toml reader, and the rewrite `template build`
 * does after a build (e2b_toml_set of template_id).
 *
 * Checked: a failure names its line; a file that parses, once template_id
 * is set in it, parses again with exactly that template_id (quotes,
 * backslashes and newlines in the value survive) and every other field as
 * it was. Runs in a jail: the rewrite goes to a file on its tmpfs.
 */
#include "e2b-toml.h"
#include "fsutil.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static bool same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_ASSERT(fuzz_jail_enter(64) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const id = "new\"id\\with\nlines";
    if (size > 64 * 1024)
        return 0;
    char *text = xstrndup((const char *)data, size);
    struct e2b_toml a, b;
    struct e2b_error *err = NULL;
    if (e2b_toml_parse(&a, text, &err) < 0) {
        FUZZ_ASSERT(err && err->msg && !strncmp(err->msg, "e2b.toml:", 9));
        e2b_error_free(err);
        e2b_toml_free(&a);
        free(text);
        return 0;
    }
    FUZZ_ASSERT(a.cpu_count >= 0 && a.memory_mb >= 0);
    FUZZ_ASSERT(e2b_write_file_atomic("/e2b.toml", data, size, 0644, &err) == 0);
    FUZZ_ASSERT(e2b_toml_set("/e2b.toml", "template_id", id, &err) == 0);
    FUZZ_ASSERT(e2b_toml_load(&b, "/e2b.toml", false, &err) == 0);
    FUZZ_ASSERT(same(b.template_id, id));
    FUZZ_ASSERT(same(a.dockerfile, b.dockerfile) && same(a.template_name, b.template_name));
    FUZZ_ASSERT(same(a.start_cmd, b.start_cmd) && same(a.ready_cmd, b.ready_cmd) && same(a.team_id, b.team_id));
    FUZZ_ASSERT(a.cpu_count == b.cpu_count && a.memory_mb == b.memory_mb);
    e2b_toml_free(&a);
    e2b_toml_free(&b);
    free(text);
    return 0;
}
