/* fuzz-manifest.c - the JSON documents a registry or an OCI layout serves:
 * descriptors, image manifests and image indexes (image-manifest.h), and the
 * platform checks and matching they use (platform.h). Pure functions.
 *
 * Input: one control byte, then a JSON document (parsed as registry.c and
 * oci.c parse it, with e2b_json_parse). Control bits 0-2 pick the platform
 * asked of an index (7: the document's "want", when it is a valid
 * platform), bit 3 whether sizes are required (registry) or not (layout).
 * The document is tried as a descriptor, a manifest and an index.
 *
 * Checked: every failure carries a message naming the image; an accepted
 * descriptor's digest is the document's own string and a well-formed
 * sha256 digest (no byte hidden after a NUL), its size the document's
 * non-negative integer or -1 where sizes may be left out, its media type
 * the document's string; an accepted manifest has schemaVersion 2, one
 * checked descriptor per layer, each of a layer media type, and a failed
 * one leaves nothing to release; an index entry selected is the first one
 * that is an image for the platform asked, by a matcher written here
 * independently of platform.c (os and architecture equal, variants
 * normalised as containerd does), its platform string says so, and "no
 * image" means there really was none; a checked platform matches its own
 * parts.
 */
#include "fuzz.h"
#include "image-manifest.h"
#include "imageref.h"
#include "json.h"
#include "platform.h"

#include <stdlib.h>
#include <string.h>

#define WHAT "fuzz-image"

static const char *const platforms[] = {
    "linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm64/v8",
    "linux/arm/v6", "windows/amd64", "linux/riscv64",
};

static void check_error(struct e2b_error *err)
{
    FUZZ_ASSERT(err && err->msg && *err->msg);
    FUZZ_ASSERT(strstr(err->msg, WHAT) != NULL); /* names the image */
}

/* A JSON string without a NUL inside: what C code sees is all there is. */
static const char *plain_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return NULL;
    return strlen(json_string_value(v)) == json_string_length(v) ? json_string_value(v) : NULL;
}

/* What an accepted descriptor d, parsed from j, must be. */
static void check_descriptor(const json_t *j, bool size_required, const struct e2b_descriptor *d)
{
    json_t *dg = json_object_get(j, "digest");
    FUZZ_ASSERT(json_is_string(dg) && d->digest == json_string_value(dg));
    FUZZ_ASSERT(json_string_length(dg) == 71 && strlen(d->digest) == 71);
    FUZZ_ASSERT(!strncmp(d->digest, "sha256:", 7));
    FUZZ_ASSERT(strspn(d->digest + 7, "0123456789abcdef") == 64);
    FUZZ_ASSERT(e2b_digest_valid(d->digest));
    json_t *size = json_object_get(j, "size");
    if (size) {
        FUZZ_ASSERT(json_is_integer(size) && json_integer_value(size) >= 0);
        FUZZ_ASSERT(d->size == json_integer_value(size));
    } else {
        FUZZ_ASSERT(!size_required && d->size == -1);
    }
    json_t *mt = json_object_get(j, "mediaType");
    if (mt) {
        FUZZ_ASSERT(json_is_string(mt) && d->media_type == json_string_value(mt));
        FUZZ_ASSERT(strlen(d->media_type) == json_string_length(mt));
    } else {
        FUZZ_ASSERT(d->media_type == NULL);
    }
}

static void try_descriptor(const json_t *j, bool size_required)
{
    struct e2b_descriptor d;
    struct e2b_error *err = NULL;
    if (e2b_descriptor_parse(j, WHAT, "the descriptor", size_required, &d, &err) == 0) {
        FUZZ_ASSERT(err == NULL);
        check_descriptor(j, size_required, &d);
    } else {
        check_error(err);
    }
    e2b_error_free(err);
}

static void try_manifest(const json_t *j, bool size_required)
{
    struct e2b_manifest m;
    struct e2b_error *err = NULL;
    if (e2b_manifest_parse(j, WHAT, size_required, &m, &err) == 0) {
        FUZZ_ASSERT(err == NULL);
        json_t *sv = json_object_get(j, "schemaVersion");
        FUZZ_ASSERT(json_is_integer(sv) && json_integer_value(sv) == 2);
        check_descriptor(json_object_get(j, "config"), size_required, &m.config);
        const char *cmt = m.config.media_type;
        FUZZ_ASSERT(!cmt || !strcmp(cmt, E2B_MT_OCI_CONFIG) || !strcmp(cmt, E2B_MT_DOCKER_CONFIG));
        json_t *layers = json_object_get(j, "layers");
        FUZZ_ASSERT(json_is_array(layers) && m.n_layers == json_array_size(layers));
        for (size_t i = 0; i < m.n_layers; i++) {
            check_descriptor(json_array_get(layers, i), size_required, &m.layers[i]);
            FUZZ_ASSERT(e2b_mt_is_layer(m.layers[i].media_type));
        }
        e2b_manifest_release(&m);
    } else {
        check_error(err);
        FUZZ_ASSERT(m.layers == NULL && m.n_layers == 0); /* nothing for the caller to release */
    }
    e2b_error_free(err);
}

/* The platform matcher, written again from its specification in
 * platform.h: same os, same architecture; an arm64 entry without a variant
 * is v8, an arm one v7; a wanted platform without a variant takes any
 * variant, except on arm and arm64 where it means the default one. */
static const char *norm(const char *arch, const char *variant)
{
    if (variant && *variant)
        return variant;
    if (!strcmp(arch, "arm64"))
        return "v8";
    if (!strcmp(arch, "arm"))
        return "v7";
    return "";
}

static bool ref_matches(const char *want, const char *os, const char *arch, const char *variant)
{
    char *buf = xstrdup(want);
    char *w_os = buf, *w_arch = strchr(buf, '/'), *w_var = NULL;
    bool r = false;
    if (!w_arch)
        goto out;
    *w_arch++ = '\0';
    if ((w_var = strchr(w_arch, '/')))
        *w_var++ = '\0';
    if (strcmp(w_os, os) || strcmp(w_arch, arch))
        goto out;
    bool arm = !strcmp(arch, "arm") || !strcmp(arch, "arm64");
    r = (!w_var && !arm) || !strcmp(norm(arch, w_var), norm(arch, variant));
out:
    free(buf);
    return r;
}

/* Is entry m of an index an image for `want`? (What the selector passes over
 * are attestations and other non-images, and entries whose strings hide a
 * NUL: they are not what C code would take them for.) */
static bool ref_candidate(const json_t *m, const char *want)
{
    json_t *p = json_object_get(m, "platform");
    const char *os = plain_str(p, "os"), *arch = plain_str(p, "architecture");
    const char *var = plain_str(p, "variant"), *mt = plain_str(m, "mediaType");
    if ((!var && json_is_string(json_object_get(p, "variant"))) ||
        (!mt && json_is_string(json_object_get(m, "mediaType"))))
        return false; /* a NUL inside */
    if (!os || !arch || !strcmp(os, "unknown"))
        return false;
    if (mt && !e2b_mt_is_manifest(mt) && !e2b_mt_is_index(mt))
        return false;
    return ref_matches(want, os, arch, var);
}

static void try_index(const json_t *j, const char *want, bool size_required)
{
    size_t idx = (size_t)-1;
    char *plat = NULL;
    struct e2b_error *err = NULL;
    json_t *list = json_object_get(j, "manifests");
    if (e2b_image_index_select(j, want, WHAT, size_required, &idx, &plat, &err) == 0) {
        FUZZ_ASSERT(err == NULL && json_is_array(list) && idx < json_array_size(list));
        json_t *m = json_array_get(list, idx);
        FUZZ_ASSERT(ref_candidate(m, want)); /* what was asked for */
        for (size_t i = 0; i < idx; i++)     /* and the first such */
            FUZZ_ASSERT(!ref_candidate(json_array_get(list, i), want));
        json_t *p = json_object_get(m, "platform");
        const char *var = e2b_json_str(p, "variant");
        char *expect = xasprintf("%s/%s%s%s", e2b_json_str(p, "os"), e2b_json_str(p, "architecture"),
                                 var ? "/" : "", var ? var : "");
        FUZZ_ASSERT(plat && !strcmp(plat, expect));
        free(expect);
        struct e2b_descriptor d;
        struct e2b_error *e2 = NULL;
        FUZZ_ASSERT(e2b_descriptor_parse(m, WHAT, "entry", size_required, &d, &e2) == 0);
        check_descriptor(m, size_required, &d);
        free(plat);
    } else {
        check_error(err);
        FUZZ_ASSERT(plat == NULL);
        if (err->code == E2B_ERR_NOT_FOUND) { /* "has no <platform> image": none there */
            for (size_t i = 0; i < json_array_size(list); i++)
                FUZZ_ASSERT(!ref_candidate(json_array_get(list, i), want));
        }
    }
    e2b_error_free(err);
}

/* A checked platform "os/arch[/variant]" serves itself. */
static void try_platform(const char *s)
{
    struct e2b_error *err = NULL;
    const char *resolved = NULL;
    if (e2b_platform_resolve(s, &resolved, &err) < 0) {
        FUZZ_ASSERT(err && err->msg && *err->msg);
        e2b_error_free(err);
        return;
    }
    FUZZ_ASSERT(resolved == s && e2b_platform_check(s, NULL) == 0);
    char *copy = xstrdup(s), *arch = strchr(copy, '/'), *var;
    FUZZ_ASSERT(arch != NULL);
    *arch++ = '\0';
    if ((var = strchr(arch, '/')))
        *var++ = '\0';
    FUZZ_ASSERT(*copy && *arch && (!var || (*var && !strchr(var, '/'))));
    FUZZ_ASSERT(e2b_platform_matches(s, copy, arch, var));
    FUZZ_ASSERT(ref_matches(s, copy, arch, var));
    /* and both matchers agree on its neighbours */
    const char *vars[] = {NULL, "", "v7", "v8", var};
    for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
        FUZZ_ASSERT(e2b_platform_matches(s, copy, arch, vars[i]) == ref_matches(s, copy, arch, vars[i]));
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    unsigned ctl = data[0];
    bool size_required = ctl & 8;
    json_t *j = NULL;
    struct e2b_error *err = NULL;
    if (e2b_json_parse((const char *)data + 1, size - 1, "fuzz", &j, &err) < 0) {
        FUZZ_ASSERT(err && err->msg);
        e2b_error_free(err);
        return 0;
    }
    const char *want = platforms[(ctl & 7) % ARRAY_SIZE(platforms)];
    if ((ctl & 7) == 7) {
        want = plain_str(j, "want");
        if (want && e2b_platform_check(want, NULL) < 0)
            want = NULL;
    }
    try_descriptor(j, size_required);
    try_manifest(j, size_required);
    if (want)
        try_index(j, want, size_required);
    if (json_is_string(j) && strlen(json_string_value(j)) == json_string_length(j))
        try_platform(json_string_value(j));
    if (json_is_object(j) && plain_str(j, "want"))
        try_platform(plain_str(j, "want"));
    json_decref(j);
    return 0;
}
