/* base-image.h - a build's FROM image: reference -> image config + unpacked root.
 *
 *   struct e2b_base_image b;
 *   if (e2b_base_image_open("127.0.0.1:5000/busybox:1", &o, &b, &err) < 0) ...
 *   ... b.img.config.env ...                  (nothing unpacked yet)
 *   if (e2b_base_image_root(&b, &o, &err) < 0) ...
 *   ... b.root: read-only, shared by every build ...
 *   e2b_base_image_release(&b);
 *
 * References: a registry reference (pulled with registry.h: blobs cached by
 * digest) or oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF]
 * (oci.h). The unpacked root is cached per image ID (the config digest, which
 * names every layer's diff_id) in <data dir>/cache/roots/<hex>: unpacked
 * into a temporary directory beside it and renamed when complete, so a killed
 * build leaves no half root and a second build unpacks nothing. Callers must
 * not write into it (builds use it as an overlay lower layer).
 *
 * `e2b-template:NAME` is a template of the local store (E2B's fromTemplate):
 * its current build's rootfs/ tree is the root (pinned for the life of the
 * process), and its env, workdir and user are the image config. The
 * built-in `host` template, and templates built on it, have `host` set:
 * the host's /usr, /etc ... lie below the root (see build.c), which is NULL
 * for `host` itself and the template's own files otherwise.
 */
#ifndef E2B_BASE_IMAGE_H
#define E2B_BASE_IMAGE_H

#include "oci.h"

struct e2b_base_opts {
    const char *platform;                   /* NULL: the host's */
    const char *const *insecure_registries; /* NULL-ended "host[:port]" list */
    const char *username, *password;        /* registry credentials, before the auth files */
    /* Progress: final lines (one per layer), and on a TTY status updates
     * (final = false) meant to overwrite each other on one line. */
    void (*progress)(void *ud, const char *line, bool final);
    bool tty;
    void *ud;
};

struct e2b_base_image {
    char *ref;             /* as written in FROM */
    char *id;              /* "sha256:<hex>" of the config */
    struct e2b_image img;
    char *root;            /* the cached unpacked root, after e2b_base_image_root() */
    bool host;             /* on the host's own programs (see above) */
};

#define E2B_TEMPLATE_REF_PREFIX "e2b-template:"
bool e2b_base_ref_is_template(const char *ref);

int e2b_base_image_open(const char *ref, const struct e2b_base_opts *o, struct e2b_base_image *ret,
                        struct e2b_error **err);
int e2b_base_image_root(struct e2b_base_image *b, const struct e2b_base_opts *o, struct e2b_error **err);
void e2b_base_image_release(struct e2b_base_image *b);

#endif
