/* registry.h - pull images from an OCI / Docker registry (distribution API v2).
 *
 *   struct e2b_registry_opts o = {.platform = "linux/arm64", .progress = cb};
 *   struct e2b_pulled_image img;
 *   if (e2b_registry_pull("debian:12", &o, &img, &err) < 0) ...
 *   for (size_t i = 0; i < img.n_layers; i++) apply(img.layers[i].path, img.layers[i].media_type);
 *   e2b_pulled_image_release(&img);
 *
 * Manifests are asked for with the OCI manifest, OCI index, Docker v2 and
 * Docker manifest-list media types; an index or list is resolved to the
 * manifest for the wanted platform. Auth: anonymous, Bearer tokens fetched
 * from the realm of a WWW-Authenticate challenge (anonymously or with Basic
 * credentials), or Basic; credentials come from the registry's entry in
 * $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json or
 * $DOCKER_CONFIG/config.json (~/.docker/config.json) ("auths" -> "auth",
 * base64 "user:password"). Every manifest and blob is checked against its
 * sha256 digest. Blobs are cached by digest in <cache>/sha256/<hex>
 * (default <data dir>/cache/blobs), shared by all pulls; a download in
 * progress is <hex>.partial and a later pull resumes it with a Range
 * request. Plain http is used only for loopback registries (localhost,
 * 127.0.0.0/8, ::1) and those in insecure_registries; others get https.
 */
#ifndef E2B_REGISTRY_H
#define E2B_REGISTRY_H

#include "error.h"
#include "image-manifest.h"

/* Progress of one blob (config or layer); called as bytes arrive, and
 * once with done == total (cached = true) for a blob already in the cache. */
struct e2b_pull_progress {
    const char *digest;
    const char *media_type;
    uint64_t done;           /* bytes of this blob on disk so far (resumed bytes included) */
    uint64_t total;          /* its size from the manifest */
    size_t index, count;     /* this is blob index+1 of count (config first, then layers) */
    bool cached;             /* already in the cache: nothing downloaded */
};

struct e2b_registry_opts {
    const char *platform;                 /* "os/arch[/variant]"; NULL: the host's (linux/amd64 here) */
    const char *cache_dir;                /* NULL: <e2b_data_dir()>/cache/blobs */
    const char *const *insecure_registries; /* "host[:port]" reached over plain http; NULL-ended */
    const char *auth_file;                /* credentials file read before the default ones */
    const char *username, *password;      /* explicit credentials, before any file */
    void (*progress)(const struct e2b_pull_progress *p, void *ud);
    void *ud;
    long connect_timeout_ms;              /* 0: http.h's default */
};

struct e2b_pulled_image {
    char *ref;               /* the full reference: "docker.io/library/debian:12" */
    char *registry;          /* API host: "registry-1.docker.io", "127.0.0.1:5000" */
    char *repo;              /* "library/debian" */
    char *index_digest;      /* digest of the index / manifest list it came from, or NULL */
    char *manifest_digest;   /* "sha256:<hex>" of the image manifest */
    char *manifest_media_type;
    char *manifest;          /* the manifest JSON, exactly as received (NUL-terminated) */
    size_t manifest_len;
    char *platform;          /* "linux/amd64" as the index named it, or as asked */
    char *config_digest;
    char *config_media_type;
    char *config_path;       /* the verified config blob (image config JSON) in the cache */
    struct e2b_image_layer *layers; /* base first; verified blobs in the cache, no diff_id */
    size_t n_layers;
    /* What this pull transferred: 0 blobs when everything was cached. */
    unsigned blobs_downloaded;
    uint64_t bytes_downloaded;
};

int e2b_registry_pull(const char *ref, const struct e2b_registry_opts *opts,
                      struct e2b_pulled_image *ret, struct e2b_error **err);
void e2b_pulled_image_release(struct e2b_pulled_image *img);

/* <e2b_data_dir()>/cache/blobs; caller frees. */
char *e2b_blob_cache_dir(void);
/* Is this registry host ("h", "h:port", "[::1]:p") on the loopback? */
bool e2b_registry_is_loopback(const char *host);
/* "sha256:<hex>" of a file's content, for checking blobs. */
int e2b_blob_digest_file(const char *path, char **ret_digest, struct e2b_error **err);
/* Basic credentials for a registry from the auth files (see above); 0 and
 * NULLs when there are none, <0 when a file is unreadable or malformed. */
int e2b_registry_find_credentials(const char *registry, const char *auth_file, char **ret_user,
                                  char **ret_pass, struct e2b_error **err);

#endif
