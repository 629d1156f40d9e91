/* fuzz-dockerfile.c - the Dockerfile parser, stage selection, the JSON dump
 * and the word expander, on any text. Every failure must carry a message.
 */
#include "dockerfile.h"
#include "dockerfile-expand.h"
#include "fuzz.h"

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
        FUZZ_ASSERT(err && err->msg); /* every failure carries a message */
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
