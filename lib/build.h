/* build.h - build a template root from a Dockerfile into the template store.
 *
 * lib/dockerfile parses; the stages the target needs are built in order,
 * each from scratch, an image (base-image.h: registry, oci:, oci-archive:,
 * docker-archive:) or an earlier stage. RUN runs in a build sandbox (mount,
 * pid, ipc, uts and network namespaces, cgroup limits from cpu_count and
 * memory_mb, the sandbox seccomp filter, chroot into the stage root, as USER
 * in WORKDIR with ENV, through SHELL), COPY/ADD from the context (honouring
 * .dockerignore, --chown, --chmod, --from, heredocs; ADD unpacks local tars
 * and fetches URLs), and ENV, WORKDIR, USER, LABEL, CMD, ENTRYPOINT, EXPOSE,
 * VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL are recorded as metadata. Steps that
 * change files are cached (build-cache.h). The target stage becomes the
 * template: `user` added, /.e2b written, ext4 image made, and the store
 * transaction committed only at the end, so a failed build leaves the
 * previous version. e2b_build_run moves the calling process into a private
 * mount namespace (it must be single-threaded and root).
 */
#ifndef E2B_BUILD_H
#define E2B_BUILD_H

#include <stdbool.h>
#include "error.h"
#include "json.h"

struct e2b_build_opts {
    const char *context;       /* directory (already cloned for git contexts) */
    const char *dockerfile;    /* path of the Dockerfile */
    const char *name;          /* template name (alias): e2b_template_name_valid() */
    const char *const *tags;   /* NULL-ended tags of the build; NULL or empty: "default" */
    const char *start_cmd, *ready_cmd;
    const char *runtime;       /* ns, vm, auto, or NULL: what its sandboxes run on */
    /* The guest binary, mounted read-only at /run/e2b/envd while the start
     * and ready commands run, as it is in a sandbox (a start command may be
     * one of its applets: `/run/e2b/envd code-interpreter`); NULL: none. */
    const char *envd_path;
    int ready_timeout_s;
    long cpu_count, memory_mb, disk_headroom_mb;
    const char *const *build_args; /* K=V */
    size_t n_build_args;
    const char *target;
    const char *platform;      /* of base images; NULL: the host's */
    const char *const *insecure_registries; /* NULL-ended */
    bool network_host;
    bool no_cache;
    /* Builds of `e2b serve`'s template API: */
    const char *template_id, *build_id; /* IDs handed out already (NULL: found or made up) */
    const char *registry_username, *registry_password; /* for the base image's registry */
    /* E2B's template SDK semantics in the target stage: steps run as USER
     * (the generated Dockerfile starts with `USER user`), a USER step makes
     * a missing account (passwordless sudo for `user` only), and RUN without
     * a WORKDIR starts in the user's home. */
    bool e2b_steps;
    size_t force_from;  /* >0: instructions from this index on (1-based, FROM lines
                         * counted; see step) skip the cache */
    /* step: called as instruction `index` of `total` starts (FROM lines
     * included), before its progress line; may be NULL */
    void (*step)(void *data, size_t index, size_t total);
    /* progress: one call per step and for step output; may be NULL */
    void (*progress)(void *data, const char *line);
    void (*output)(void *data, const char *buf, size_t len);
    /* on a TTY: transient status lines (progress bars), each replacing the last */
    void (*status)(void *data, const char *line);
    void *data;
};

/* Parse only: the instructions as JSON (for --dry-run). */
int e2b_build_parse(const struct e2b_build_opts *o, json_t **ret, struct e2b_error **err);
/* Build and commit; ret_meta: the template.json written (new reference). */
int e2b_build_run(const struct e2b_build_opts *o, json_t **ret_meta, struct e2b_error **err);

#endif
