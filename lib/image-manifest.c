/* image-manifest.c - see image-manifest.h */
#include "image-manifest.h"
#include "imageref.h"
#include "json.h"
#include "platform.h"
#include "strbuf.h"

bool e2b_mt_is_index(const char *mt)
{
    return mt && (STREQ(mt, E2B_MT_OCI_INDEX) || STREQ(mt, E2B_MT_DOCKER_LIST));
}

bool e2b_mt_is_manifest(const char *mt)
{
    return mt && (STREQ(mt, E2B_MT_OCI_MANIFEST) || STREQ(mt, E2B_MT_DOCKER_MANIFEST));
}

bool e2b_mt_is_layer(const char *mt)
{
    static const char *const ok[] = {
        E2B_MT_OCI_LAYER,
        E2B_MT_OCI_LAYER_GZIP,
        E2B_MT_OCI_LAYER_ZSTD,
        E2B_MT_DOCKER_LAYER,
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    };
    for (size_t i = 0; mt && i < ARRAY_SIZE(ok); i++)
        if (STREQ(mt, ok[i]))
            return true;
    return false;
}

/* obj's string member key, NULL when it is absent or no string. JSON may
 * carry a NUL inside a string (e2b_json_parse allows it), and C code would
 * see only what is before it: "sha256:<hex>\u0000/x" would pass for a
 * digest, "linux\u0000x" for linux. Such a string sets *cut. */
static const char *str_member(const json_t *obj, const char *key, bool *cut)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return NULL;
    if (strlen(json_string_value(v)) != json_string_length(v))
        *cut = true;
    return json_string_value(v);
}

int e2b_descriptor_parse(const json_t *d, const char *what, const char *which, bool size_required,
                         struct e2b_descriptor *ret, struct e2b_error **err)
{
    if (!json_is_object(d))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': %s is not a descriptor object", what, which);
    bool cut = false;
    const char *digest = str_member(d, "digest", &cut);
    if (cut || !e2b_digest_valid(digest)) {
        if (digest && !e2b_str_has_prefix(digest, "sha256:") && strchr(digest, ':'))
            return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "image '%s': %s has digest '%s', which is not sha256",
                                 what, which, digest);
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': %s has a missing or malformed digest", what,
                             which);
    }
    json_t *size = json_object_get(d, "size");
    if ((size || size_required) && (!json_is_integer(size) || json_integer_value(size) < 0))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': %s has a missing or bad size", what, which);
    json_t *mt = json_object_get(d, "mediaType");
    if (mt && (!json_is_string(mt) || strlen(json_string_value(mt)) != json_string_length(mt)))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': %s has a mediaType that is not a plain string",
                             what, which);
    *ret = (struct e2b_descriptor){
        .digest = digest,
        .media_type = json_string_value(mt),
        .size = size ? json_integer_value(size) : -1,
    };
    return 0;
}

void e2b_manifest_release(struct e2b_manifest *m)
{
    free(m->layers);
    memset(m, 0, sizeof(*m));
}

void e2b_image_layers_free(struct e2b_image_layer *layers, size_t n)
{
    for (size_t i = 0; i < n; i++)
        e2b_free_many(&layers[i].digest, &layers[i].diff_id, &layers[i].media_type,
                      &layers[i].path);
    free(layers);
}

int e2b_manifest_parse(const json_t *j, const char *what, bool size_required, struct e2b_manifest *ret,
                       struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    if (!json_is_object(j))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': the manifest is not a JSON object", what);
    json_t *sv = json_object_get(j, "schemaVersion");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "image '%s': the manifest is not of schemaVersion 2", what);
    if (e2b_descriptor_parse(json_object_get(j, "config"), what, "the manifest's config", size_required,
                             &ret->config, err) < 0)
        return -1;
    const char *cmt = ret->config.media_type;
    if (cmt && !STREQ(cmt, E2B_MT_OCI_CONFIG) && !STREQ(cmt, E2B_MT_DOCKER_CONFIG))
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "image '%s' is not a container image (config media type %s)",
                             what, cmt);
    json_t *layers = json_object_get(j, "layers");
    if (!json_is_array(layers))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': the manifest has no \"layers\" array", what);
    ret->layers = xcalloc(json_array_size(layers) + 1, sizeof(*ret->layers));
    size_t i;
    json_t *d;
    json_array_foreach(layers, i, d) {
        _cleanup_free_ char *which = xasprintf("layer %zu", i + 1);
        struct e2b_descriptor *l = &ret->layers[i];
        if (e2b_descriptor_parse(d, what, which, size_required, l, err) < 0) {
            e2b_manifest_release(ret);
            return -1;
        }
        if (!e2b_mt_is_layer(l->media_type)) {
            e2b_error_set(err, E2B_ERR_UNSUPPORTED, "image '%s': layer %s has unsupported media type '%s'", what,
                          l->digest, l->media_type ? l->media_type : "");
            e2b_manifest_release(ret);
            return -1;
        }
        ret->n_layers = i + 1;
    }
    return 0;
}

int e2b_image_index_select(const json_t *index, const char *platform, const char *what, bool size_required,
                           size_t *ret_index, char **ret_platform, struct e2b_error **err)
{
    json_t *list = json_object_get(index, "manifests");
    if (!json_is_array(list))
        return e2b_error_set(err, E2B_ERR_INVALID, "image '%s': the image index has no \"manifests\" array", what);
    _cleanup_strbuf_ struct strbuf have = STRBUF_INIT;
    strbuf_init(&have);
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        json_t *p = json_object_get(m, "platform");
        bool cut = false;
        const char *os = str_member(p, "os", &cut), *arch = str_member(p, "architecture", &cut);
        const char *var = str_member(p, "variant", &cut), *mt = str_member(m, "mediaType", &cut);
        if (cut || !os || !arch || STREQ(os, "unknown"))
            continue; /* attestations and other non-images (or not what they seem) */
        if (mt && !e2b_mt_is_manifest(mt) && !e2b_mt_is_index(mt))
            continue;
        strbuf_addf(&have, "%s%s/%s%s%s", have.len ? ", " : "", os, arch, var ? "/" : "", var ? var : "");
        if (!e2b_platform_matches(platform, os, arch, var))
            continue;
        struct e2b_descriptor d;
        _cleanup_free_ char *which = xasprintf("the index entry for %s", platform);
        if (e2b_descriptor_parse(m, what, which, size_required, &d, err) < 0)
            return -1;
        *ret_index = i;
        if (ret_platform)
            *ret_platform = xasprintf("%s/%s%s%s", os, arch, var ? "/" : "", var ? var : "");
        return 0;
    }
    return e2b_error_set(err, E2B_ERR_NOT_FOUND, "image '%s' has no %s image (it has: %s)", what, platform,
                         have.len ? have.buf : "nothing runnable");
}
