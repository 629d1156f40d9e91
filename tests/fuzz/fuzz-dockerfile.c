/* fuzz-dockerfile.c - fuzz the Dockerfile parser, expander and JSON dump.
 *
 *   libFuzzer:  clang -DE2B_LIBFUZZER -fsanitize=fuzzer,address ... (see `make fuzz`)
 *   replay:     cc ... -fsanitize=address,undefined; ./fuzz-dockerfile [DIR|FILE...]
 *               (default: tests/fuzz/corpus/dockerfile), exit 0 when every input ran.
 */
#include "dockerfile.h"
#include "dockerfile-expand.h"

#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *lookup(void *ud, const char *name)
{
    (void)ud;
    if (!strcmp(name, "A"))
        return "a b";
    if (!strcmp(name, "EMPTY"))
        return "";
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ba[] = {"A=1", "TARGETARCH=arm64", "HTTP_PROXY=http://p", "NOVALUE_FROM_ENV"};
    struct e2b_build_args args = {.args = ba, .n_args = 4, .target_platform = "linux/arm/v7"};
    struct e2b_dockerfile *df = NULL;
    struct e2b_error *err = NULL;

    if (size > 256 * 1024)
        return 0;
    if (e2b_dockerfile_parse("fuzz.Dockerfile", (const char *)data, size, &args, &df, &err) == 0) {
        size_t target;
        bool *needed = NULL;
        if (e2b_dockerfile_select(df, df->stages[df->n_stages - 1].name, &target, &needed, &err) == 0) {
            json_t *j = e2b_dockerfile_to_json(df, needed, target);
            char *s = json_dumps(j, JSON_COMPACT);
            free(s);
            json_decref(j);
            free(needed);
        }
        e2b_error_free(err);
        err = NULL;
        e2b_dockerfile_free(df);
    } else {
        /* every failure carries a message */
        if (!err || !err->msg)
            abort();
        e2b_error_free(err);
        err = NULL;
    }

    /* the expander alone, on the input as one word */
    if (size <= 4096) {
        char *word = xstrndup((const char *)data, size), *r = NULL, **w = NULL;
        if (e2b_df_expand_word(word, '\\', 0, lookup, NULL, &r, &err) == 0)
            free(r);
        e2b_error_free(err);
        err = NULL;
        if (e2b_df_expand_word(word, '`', E2B_DF_EXPAND_KEEP_QUOTES, lookup, NULL, &r, &err) == 0)
            free(r);
        e2b_error_free(err);
        err = NULL;
        if (e2b_df_expand_words(word, '\\', lookup, NULL, &w, &err) == 0)
            e2b_strv_free(w);
        e2b_error_free(err);
        free(word);
    }
    return 0;
}

#ifndef E2B_LIBFUZZER
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz-dockerfile: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n > cap)
            buf = xrealloc(buf, cap = (len + n) * 2);
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    LLVMFuzzerTestOneInput((const uint8_t *)(buf ? buf : ""), len);
    free(buf);
    return 0;
}

static int run_path(const char *path, int *count)
{
    struct stat sb;
    if (stat(path, &sb) < 0) {
        fprintf(stderr, "fuzz-dockerfile: cannot stat '%s': %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "fuzz-dockerfile: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = xasprintf("%s/%s", path, de->d_name);
        if (run_path(p, count) < 0)
            r = -1;
        free(p);
    }
    closedir(d);
    return r;
}

int main(int argc, char **argv)
{
    int count = 0, r = 0;
    if (argc < 2)
        r = run_path("tests/fuzz/corpus/dockerfile", &count);
    for (int i = 1; i < argc; i++)
        if (run_path(argv[i], &count) < 0)
            r = -1;
    printf("fuzz-dockerfile: replayed %d input%s\n", count, count == 1 ? "" : "s");
    return r < 0 || count == 0 ? 1 : 0;
}
#endif
