/* build-cache.h - the step cache of template builds, and the keys it is
 * indexed by.
 *
 * A step that changes files (RUN, COPY, ADD, WORKDIR) leaves an overlayfs
 * upper directory: its changes. It is kept under a key hashing everything
 * the step's result depends on (the key of the step below it, the
 * instruction, its sources), so a build that meets the same key again
 * pushes the kept directory instead of running the step.
 *
 * Layout, <data dir>/cache/build:
 *   layers/<id>/upper      a step's changes (overlayfs upper: whiteouts are
 *                          0:0 character devices, opaque dirs an xattr)
 *   layers/<id>.tmp-<pid>  a step being built
 *   steps/<key> -> ../layers/<id>   the result of a step; replaced by
 *                          rename, layers are never modified once linked
 *   mounts/<template>/<id> RUN --mount=type=cache directories
 */
#ifndef E2B_BUILD_CACHE_H
#define E2B_BUILD_CACHE_H

#include "dockerfile.h"
#include "envd-crypto.h"
#include "json.h"

/* Keys: SHA-256 over length-prefixed strings (NULL differs from ""),
 * finished as hex (e2b_sha256_final_hex). */
void e2b_build_key_str(struct e2b_sha256 *c, const char *s);
/* An instruction as it affects its result (not its line number). */
void e2b_build_key_instr(struct e2b_sha256 *c, const struct e2b_df_instr *in);

struct e2b_build_cache {
    char *dir;   /* <data dir>/cache/build */
    bool off;    /* --no-cache: no lookups (steps are still kept) */
};

/* Make the directories and remove what builds that died left there. */
int e2b_build_cache_open(struct e2b_build_cache *c, bool no_cache, struct e2b_error **err);
void e2b_build_cache_close(struct e2b_build_cache *c);
/* The upper directory kept for key, or NULL. */
char *e2b_build_cache_lookup(const struct e2b_build_cache *c, const char *key);
/* A new layer directory, <cache>/layers/<id>.tmp-<pid>/{upper,work}. */
char *e2b_build_cache_layer_new(const struct e2b_build_cache *c, struct e2b_error **err);
/* Finish a layer: drop overlay's work dir, rename into place and point
 * steps/<key> at it. Returns the upper's final path. */
char *e2b_build_cache_layer_commit(const struct e2b_build_cache *c, const char *tmp, const char *key,
                                   struct e2b_error **err);
/* The directory of a RUN --mount=type=cache (per template and cache id). */
char *e2b_build_cache_mount_dir(const struct e2b_build_cache *c, const char *template_name, const char *id);

#endif
