/* oci.h - container images from local sources, and the image model every
 * source fills (local layouts and archives here, registries through
 * registry.h and e2b_image_from_pulled).
 *
 *   struct e2b_image img;
 *   if (e2b_image_open_local("oci-archive:/tmp/debian.tar:12", &o, &img, &err) < 0) ...
 *   if (e2b_image_unpack(&img, rootfs, NULL, NULL, &err) < 0) ...   (base layer first)
 *   ... img.config.env, img.config.cmd, img.config_digest ...
 *   e2b_image_release(&img);
 *
 * Sources, with the syntax of containers-transports(5) (path and reference
 * split at the first ':'):
 *   oci:DIR[:REF]              an OCI image layout (oci-layout, index.json,
 *                              blobs/sha256/<hex>); REF is an
 *                              org.opencontainers.image.ref.name annotation
 *                              or @N, the N-th entry of index.json; without
 *                              it the layout must hold one image (or one per
 *                              platform).
 *   oci-archive:FILE[:REF]     the same layout in a tar file.
 *   docker-archive:FILE[:REF]  `docker save` output (manifest.json of
 *                              {Config, RepoTags, Layers}); REF is one of the
 *                              RepoTags ("busybox:latest", compared after
 *                              Docker Hub normalisation) or @N.
 * Image indexes and manifest lists are resolved to the manifest of the
 * wanted platform ("os/arch[/variant]", default the host's; arm64 means
 * arm64/v8 and arm arm/v7 when no variant is given).
 *
 * Every blob is checked against its digest: manifests, indexes and configs
 * when read, layers when unpacked (they are hashed while applied) or at open
 * with verify_layers. A mismatch names the blob. Archives are read once:
 * their blobs go to the shared blob cache, <cache>/sha256/<hex> (the
 * registry puller's layout; default e2b_blob_cache_dir()), written to a
 * temporary file there and renamed once their digest is known, so a later
 * build of the same archive finds them; blobs already in the cache are not
 * rewritten. An OCI layout directory is read in place.
 */
#ifndef E2B_OCI_H
#define E2B_OCI_H

#include "error.h"
#include "layer.h"
#include "image-manifest.h"
#include "registry.h"
#include <jansson.h>


struct e2b_kv {
    char *key, *value;
};

/* The image config (OCI image-spec config.md; Docker's is the same for these fields). */
struct e2b_image_config {
    char *os, *architecture, *variant; /* NULL when absent */
    char *created;                     /* RFC 3339, as written */
    char **env;          /* "KEY=value", NULL-terminated; NULL when absent */
    char **entrypoint;   /* NULL when absent; an empty vector for [] */
    char **cmd;          /* same */
    char *working_dir;   /* NULL when absent or "" */
    char *user;
    char *stop_signal;
    char **exposed_ports; /* "80/tcp", in the config's order; NULL when none */
    char **volumes;
    struct e2b_kv *labels;
    size_t n_labels;
    bool has_healthcheck;
    struct {
        char **test;      /* ["CMD", ...], ["CMD-SHELL", "..."], ["NONE"]; NULL: inherit */
        int64_t interval_ns, timeout_ns, start_period_ns, start_interval_ns; /* 0: default */
        int retries;      /* 0: default */
    } healthcheck;
    char **diff_ids;      /* rootfs.diff_ids, "sha256:<hex>", base first */
    size_t n_diff_ids;
};

struct e2b_image {
    char *source;              /* as given: "oci:/x:tag", "docker.io/library/debian:12" */
    char *transport;           /* "oci", "oci-archive", "docker-archive", "docker" (a registry) */
    char *index_digest;        /* the index / manifest list it was picked from, or NULL */
    char *manifest_digest;     /* NULL for a docker-archive (which has no manifest) */
    char *manifest_media_type;
    char *platform;            /* "linux/amd64", from the index entry or the config */
    char *config_digest;       /* "sha256:<hex>": the image ID */
    char *config_json;         /* the config blob as stored (NUL-terminated) */
    size_t config_len;
    struct e2b_image_config config;
    struct e2b_image_layer *layers; /* base first */
    size_t n_layers;
};

struct e2b_image_opts {
    const char *platform;      /* "os/arch[/variant]"; NULL: the host's */
    const char *cache_dir;     /* blob cache (blobs in <cache_dir>/sha256); NULL: e2b_blob_cache_dir() */
    bool verify_layers;        /* hash layers at open, not only when unpacked */
};

/* Does s name a local source (oci:, oci-archive:, docker-archive:)? */
bool e2b_image_source_is_local(const char *s);

/* Open a local source (see above). */
int e2b_image_open_local(const char *source, const struct e2b_image_opts *o, struct e2b_image *ret,
                         struct e2b_error **err);

/* Fill an image from what the registry puller fetched (its config blob is read,
 * checked and parsed; nothing is downloaded). */
int e2b_image_from_pulled(const struct e2b_pulled_image *p, struct e2b_image *ret,
                          struct e2b_error **err);

void e2b_image_release(struct e2b_image *img);

/* Progress while unpacking: layer index+1 of count, bytes of its blob read. */
struct e2b_unpack_progress {
    size_t index, count;
    const char *digest;
    uint64_t done, total;
};

/* Apply every layer, base first, to the existing directory `root`, checking
 * each blob's digest and diff_id. On failure `root` is half-written. */
int e2b_image_unpack(const struct e2b_image *img, const char *root,
                     void (*progress)(const struct e2b_unpack_progress *p, void *ud), void *ud,
                     struct e2b_error **err);

/* Parse an image config blob. */
int e2b_image_config_parse(const char *json, size_t len, struct e2b_image_config *ret,
                           struct e2b_error **err);
void e2b_image_config_release(struct e2b_image_config *c);
/* The parsed fields as JSON for template metadata:
 * {"env":[...],"entrypoint":[...],"cmd":[...],"workingDir":..,"user":..,
 *  "exposedPorts":[...],"volumes":[...],"labels":{..},"stopSignal":..,
 *  "healthcheck":{"test":[...],"intervalNs":..,...},"os":..,"architecture":..,"variant":..}
 * (absent fields left out). */
json_t *e2b_image_config_to_json(const struct e2b_image_config *c);


#endif
