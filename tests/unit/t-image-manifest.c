/* t-image-manifest.c - descriptors and index selection on documents that
 * are not what they seem (found by tests/fuzz/fuzz-manifest.c). */
#include "image-manifest.h"
#include "json.h"
#include "tap.h"

#define H "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define H2 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static json_t *parse(const char *s)
{
    json_t *j = NULL;
    if (e2b_json_parse(s, strlen(s), "test", &j, NULL) < 0)
        abort();
    return j;
}

static int descriptor(const char *doc, bool size_required, struct e2b_descriptor *d, int *code)
{
    json_t *j = parse(doc);
    struct e2b_error *err = NULL;
    int r = e2b_descriptor_parse(j, "img", "the config", size_required, d, &err);
    *code = err ? err->code : 0;
    if (err)
        diag("%s", err->msg);
    e2b_error_free(err);
    json_decref(j);
    return r;
}

static char *select_platform(const char *doc, const char *want)
{
    json_t *j = parse(doc);
    size_t idx;
    char *plat = NULL, *r = NULL;
    struct e2b_error *err = NULL;
    if (e2b_image_index_select(j, want, "img", true, &idx, &plat, &err) == 0)
        r = xasprintf("%zu %s", idx, plat);
    else
        diag("%s", err->msg);
    free(plat);
    e2b_error_free(err);
    json_decref(j);
    return r;
}

int main(void)
{
    struct e2b_descriptor d;
    int code;
    ok(descriptor("{\"digest\": \"" H "\", \"size\": 3}", true, &d, &code) == 0 && d.size == 3 && !d.media_type,
       "a plain descriptor");
    ok(descriptor("{\"digest\": \"" H "\"}", false, &d, &code) == 0 && d.size == -1, "size left out in a layout");
    ok(descriptor("{\"digest\": \"" H "\"}", true, &d, &code) < 0 && code == E2B_ERR_INVALID,
       "size left out for a registry");
    ok(descriptor("{\"digest\": \"sha512:ab\", \"size\": 1}", true, &d, &code) < 0 && code == E2B_ERR_UNSUPPORTED,
       "sha512 is not supported");
    /* JSON strings may hold a NUL (e2b_json_parse allows it); C sees the part before it */
    ok(descriptor("{\"digest\": \"" H "\\u0000/../x\", \"size\": 1}", true, &d, &code) < 0 && code == E2B_ERR_INVALID,
       "a digest with a NUL and more after it is malformed");
    ok(descriptor("{\"digest\": \"" H "\", \"size\": 1, \"mediaType\": \"application/vnd.oci.image.layer.v1.tar"
                  "\\u0000+zstd\"}",
                  true, &d, &code) < 0 &&
           code == E2B_ERR_INVALID,
       "a media type with a NUL is refused");

    char *s = select_platform("{\"manifests\": ["
                              "{\"digest\": \"" H "\", \"size\": 1, \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\"}},"
                              "{\"digest\": \"" H2 "\", \"size\": 1, \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"}}]}",
                              "linux/amd64");
    is_str(s, "1 linux/amd64", "the entry for the platform");
    free(s);
    s = select_platform("{\"manifests\": ["
                        "{\"digest\": \"" H "\", \"size\": 1, \"platform\": {\"os\": \"linux\\u0000x\", \"architecture\": \"amd64\"}},"
                        "{\"digest\": \"" H "\", \"size\": 1, \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\\u0000\"}},"
                        "{\"digest\": \"" H "\", \"size\": 1, \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\", "
                        "\"variant\": \"v8\\u0000x\"}},"
                        "{\"digest\": \"" H "\", \"size\": 1, \"mediaType\": \"" E2B_MT_OCI_MANIFEST "\\u0000x\", "
                        "\"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"}},"
                        "{\"digest\": \"" H2 "\", \"size\": 1, \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"}}]}",
                        "linux/amd64");
    is_str(s, "4 linux/amd64", "entries whose os, architecture or media type hide a NUL are passed over");
    free(s);
    s = select_platform("{\"manifests\": ["
                        "{\"digest\": \"" H "\", \"size\": 1, \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\", "
                        "\"variant\": \"v8\\u0000x\"}}]}",
                        "linux/arm64");
    ok(s == NULL, "a variant that hides a NUL is not the default one");
    free(s);
    return tap_done();
}
