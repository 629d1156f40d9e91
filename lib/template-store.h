/* template-store.h - templates on this machine, updated atomically.
 *
 * Layout under <data dir>/templates (e2b_data_dir()):
 *   <templateID>/current -> builds/<buildID>     (a symlink, switched by rename)
 *   <templateID>/builds/<buildID>/template.json  (E2B Template schema + ours)
 *   <templateID>/builds/<buildID>/rootfs/        (the root tree, overlay lower dir)
 *   <templateID>/builds/<buildID>/rootfs.ext4    (the same tree as an ext4 image)
 *   <templateID>/tags.json                       (tag -> build, see e2b_store_tag_list)
 * Local sandboxes use rootfs/ when it is there and rootfs.ext4 (on a loop
 * device) when only the image is, e.g. after rootfs/ was removed to save space.
 *   <templateID>/builds/<buildID>/.in-use        (lock file: a running sandbox holds
 *                                                 a shared flock on it, see e2b_store_pin)
 *   <templateID>/builds/<buildID>/.held/<id>     (a sandbox paused to disk needs it)
 *   <templateID>/builds/<buildID>/snapshot-<runtime>/  (the template's snapshot, made by
 *                                                 e2b_local_template_snapshot)
 *   .staging/<buildID>.<pid>/                    (a build in progress)
 *   .staging/deleted-<templateID>-<pid>/         (a deleted template whose builds
 *                                                 sandboxes still use)
 *   .staging/gc-<random>.<pid>/                  (a build being removed)
 *   .lock                                        (serialises commits, deletes and GC)
 * A build writes into staging and becomes visible by one rename of the
 * `current` symlink, so a failed or killed build leaves the old version.
 * Builds that are no longer current (replaced or deleted) are kept while a
 * sandbox runs from them: overlayfs needs its lower tree to stay as it was.
 * The garbage collector removes such a build only when it gets the
 * exclusive lock of its .in-use file without waiting; what it must leave is
 * collected by a later store operation (build, delete, list).
 */
#ifndef E2B_TEMPLATE_STORE_H
#define E2B_TEMPLATE_STORE_H

#include "json.h"

struct e2b_store {
    char *root; /* <data dir>/templates */
};

struct e2b_store_txn {
    struct e2b_store *store;
    char *template_id;
    char *build_id;
    char *dir;       /* staging directory to fill */
    bool existing;   /* replaces a build of an existing template */
};

int e2b_store_open(struct e2b_store *store, struct e2b_error **err);
void e2b_store_close(struct e2b_store *store);

/* Find by ID or alias/name. ret_meta: template.json (new reference);
 * ret_dir: the current build directory. Either may be NULL. */
int e2b_store_find(struct e2b_store *store, const char *id_or_alias, json_t **ret_meta,
                   char **ret_dir, struct e2b_error **err);
/* All templates' metadata, newest first. */
int e2b_store_list(struct e2b_store *store, json_t **ret_list, struct e2b_error **err);
int e2b_store_delete(struct e2b_store *store, const char *id_or_alias, struct e2b_error **err);

/* Start a build for `name` (an alias; a new template when no template has
 * it, a new build of that template otherwise), with the IDs given or NULL
 * (found or made up): `e2b serve` hands out a template's and a build's IDs
 * before the build runs. IDs are [a-z0-9] (build IDs also '-'), at most 64. */
int e2b_store_begin(struct e2b_store *store, const char *name, const char *template_id,
                         const char *build_id, struct e2b_store_txn *txn, struct e2b_error **err);
/* Write meta as template.json and make the staged build current. */
int e2b_store_commit(struct e2b_store_txn *txn, json_t *meta, struct e2b_error **err);
/* Throw the staged build away (safe after commit: does nothing). */
void e2b_store_abort(struct e2b_store_txn *txn);

/* Tags: <templateID>/tags.json maps each tag to a build ("name:tag" finds
 * that build, which the collector keeps while a tag names it); a commit
 * points the build's tags (default: "default") at it. Templates built
 * before tags.json existed have the tags their current build carries.
 * List: [{tag, buildID, createdAt}]. Assign: the tags name the build that
 * `target` ("name" or "name:tag") finds. Remove: every tag must exist. */
int e2b_store_tag_list(struct e2b_store *store, const char *id_or_name, json_t **ret_list,
                       struct e2b_error **err);
int e2b_store_tag_assign(struct e2b_store *store, const char *target, const char *const *tags,
                         char **ret_build_id, struct e2b_error **err);
int e2b_store_tag_remove(struct e2b_store *store, const char *id_or_name, const char *const *tags,
                         struct e2b_error **err);
/* Publish or unpublish (E2B's `public`; kept across builds). ret_meta: the
 * current build's template.json as written (may be NULL). */
int e2b_store_set_public(struct e2b_store *store, const char *id_or_name, bool public, json_t **ret_meta,
                         struct e2b_error **err);

/* Remove staging directories of builds whose process is gone, then
 * collect garbage (what no current build or sandbox uses). */
void e2b_store_clean_stale(struct e2b_store *store);

/* Keep the build holding `path` (its rootfs/ or rootfs.ext4; NULL: no
 * build, nothing to do) from the garbage collector for the rest of the
 * calling process's life: a shared flock on its .in-use file through an fd
 * left open on purpose (close-on-exec, so exec'd programs do not carry it).
 * Fails when the build was collected meanwhile (the template was rebuilt
 * or deleted between finding it and pinning it: try again). */
int e2b_store_pin(const char *path, struct e2b_error **err);

/* A template's counters (<store>/.stats/<templateID>.json: buildCount,
 * spawnCount, lastSpawnedAt; E2B's Template has them): one more build, or
 * one more sandbox started from it. */
void e2b_store_count(struct e2b_store *store, const char *template_id, bool spawn);
/* Its counters ({} when it has none). */
json_t *e2b_store_counts(struct e2b_store *store, const char *template_id);
/* Keep the build holding `path` for a sandbox that no process holds (one
 * paused to disk), until e2b_store_release: a file .held/<id> in the build,
 * made under a pin so the collector cannot be moving it meanwhile. */
int e2b_store_hold(const char *path, const char *id, struct e2b_error **err);
void e2b_store_release(const char *path, const char *id);

/* What template.json says about a build, but for the image config the
 * builder adds (env, workdir, user, cmd, ...). */
struct e2b_template_info {
    const char *template_id, *build_id;
    const char *name;                  /* the template's alias */
    const char *const *tags;           /* NULL-ended; NULL or empty: "default" */
    long cpu_count, memory_mb;         /* 0: 2 CPUs and 512 MiB */
    uint64_t disk_mb;                  /* size of rootfs.ext4 */
    const char *start_cmd, *ready_cmd; /* or NULL */
    const char *runtime;               /* ns, vm, auto, or NULL: the creator's choice */
};
/* template.json for a build made now: E2B's Template fields (templateID,
 * buildID, cpuCount, memoryMB, diskSizeMB, public, aliases, names,
 * createdAt, updatedAt, envdVersion, buildStatus) and ours (tags,
 * startCmd, readyCmd, runtime). */
json_t *e2b_template_meta_new(const struct e2b_template_info *t);

/* 20 characters of [a-z0-9] from the kernel's random source, E2B's ID shape. */
char *e2b_random_id(void);
/* Template names: lowercase [a-z0-9-_], at most 128 (E2B's rule). */
bool e2b_template_name_valid(const char *name);
/* Tags: [A-Za-z0-9._-], at most 128. A build carries its tags in
 * template.json ("tags", ["default"] when none was given); `name:tag`
 * finds the template only while its current build carries that tag. */
bool e2b_template_tag_valid(const char *tag);
/* RFC 3339 UTC timestamp for a wall-clock time in ms; caller frees. */
char *e2b_rfc3339(int64_t wall_ms);

#endif
