/* image-manifest.h - the JSON documents of an image, as registries serve
 * them and OCI layouts hold them: descriptors, image manifests, and image
 * indexes (Docker's manifest lists). Pure functions: nothing is fetched or
 * read here; registry.c and oci.c fetch what these documents name.
 *
 * Checked on the way in, since the documents come from registries and
 * archives nobody vouches for: a descriptor's digest is a well-formed
 * sha256 digest (so it is safe in a path), its size a non-negative integer;
 * a manifest has schemaVersion 2, a container config and layers of a tar
 * media type. Errors name `what` (the image, as the user gave it).
 */
#ifndef E2B_IMAGE_MANIFEST_H
#define E2B_IMAGE_MANIFEST_H

#include "error.h"
#include <jansson.h>

#define E2B_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define E2B_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define E2B_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define E2B_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define E2B_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define E2B_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define E2B_MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define E2B_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define E2B_MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define E2B_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"

bool e2b_mt_is_index(const char *mt);
bool e2b_mt_is_manifest(const char *mt);
bool e2b_mt_is_layer(const char *mt);

/* A descriptor; its strings point into the JSON it came from. */
struct e2b_descriptor {
    const char *digest;     /* "sha256:<64 hex>" */
    const char *media_type; /* NULL when the document leaves it out */
    int64_t size;           /* -1 when left out (OCI layouts only; registries must say) */
};

/* `size_required`: the registry puller needs every size; OCI layouts made
 * by hand sometimes leave it out. */
int e2b_descriptor_parse(const json_t *d, const char *what, const char *which, bool size_required,
                         struct e2b_descriptor *ret, struct e2b_error **err);

struct e2b_manifest {
    struct e2b_descriptor config;
    struct e2b_descriptor *layers; /* base first */
    size_t n_layers;
};

/* An image manifest; `m` points into j, which must outlive it. */
int e2b_manifest_parse(const json_t *j, const char *what, bool size_required, struct e2b_manifest *ret,
                       struct e2b_error **err);
void e2b_manifest_release(struct e2b_manifest *m);

/* A layer of an image on this machine, as the registry puller and oci.c
 * fill it: what the manifest says of it and where its blob is. */
struct e2b_image_layer {
    char *digest;     /* "sha256:<hex>" of the blob */
    char *diff_id;    /* its rootfs.diff_ids entry (sha256 of the tar); NULL if unknown */
    char *media_type; /* as the manifest says (NULL for docker-archive's plain tars) */
    int64_t size;     /* blob size in bytes */
    char *path;       /* the blob on this machine */
};
/* Free n layers' strings and the array. */
void e2b_image_layers_free(struct e2b_image_layer *layers, size_t n);

/* Pick the entry of an image index (its "manifests") for `platform` (a
 * checked one, see platform.h): attestations and other entries that are no
 * image are passed over, the entry's descriptor is checked. ret_index is its
 * position, ret_platform (may be NULL) "os/arch[/variant]" as the entry says. */
int e2b_image_index_select(const json_t *index, const char *platform, const char *what, bool size_required,
                           size_t *ret_index, char **ret_platform, struct e2b_error **err);

#endif
