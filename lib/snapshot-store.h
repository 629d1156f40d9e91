/* snapshot-store.h - snapshots of running sandboxes on this machine.
 *
 * A snapshot is a sandbox's runtime save (its memory, processes and
 * writable layer: runtime.h's `snapshot`) with what a new sandbox needs to
 * start from it. E2B's API treats a snapshot as a template: its ID is
 * "<templateID>:<tag>" or "<name>:<tag>" ("default" when no tag was given),
 * creates name it as their template, and DELETE /templates/{id} removes it.
 *
 * Layout under <data dir>/snapshots (outlives a restart of e2b serve and of
 * the machine):
 *   <key>/snapshot.json   what it is (below), written before the directory
 *                         gets its name
 *   <key>/save/           the runtime's save (vm: snapshot.json, vmstate, disk)
 *   <key>/.in-use         every running sandbox restored from it holds a
 *                         shared flock (e2b_snapshot_pin): its disk may be
 *                         their copy-on-write backing
 *   <key>/.held/<holder>  a save elsewhere needs its files (a sandbox paused
 *                         to disk, or a snapshot, made from a sandbox that was
 *                         restored from it): it cannot be deleted meanwhile
 *   <key>/.deleted        deleted: no name or ID finds it; its files go once
 *                         no sandbox runs from it (the collector)
 *   .new-<key>.<pid>/     a snapshot being made (removed if its maker died)
 *   .lock                 serialises commits, deletes and the collector
 * <key> is 20 random characters, never reused, so a sandbox's backing path
 * stays valid whatever happens to the snapshot's names.
 *
 * snapshot.json: snapshotID, templateID, tag, name (or null), names [],
 * sandboxID (the one it was taken of), runtime, createdAt, internal (a
 * fork's, never listed), sandbox {the state a restore starts from:
 * templateID, buildID, alias, rootfsImage or rootfsTree, cpuCount,
 * memoryMB, diskSizeMB, allowInternetAccess, defaultUser, defaultWorkdir,
 * envVars, fromSnapshot}, and what it holds: "rootfs" (the template build,
 * e2b_store_hold) and "parent" (the snapshot its sandbox was restored from).
 */
#ifndef E2B_SNAPSHOT_STORE_H
#define E2B_SNAPSHOT_STORE_H

#include "json.h"

struct e2b_snapshot_txn {
    char *key;         /* the new snapshot's directory name */
    char *staging;     /* where it is made */
    char *save_dir;    /* <staging>/save: the runtime saves into it */
    char *template_id; /* its template ID (a name's existing one, or new) */
    char *tag;
    char *name;      /* or NULL */
    char *final_dir; /* where it is once committed */
};

/* <data dir>/snapshots */
char *e2b_snapshots_dir(void);

/* Is name (a template name with an optional ":tag") one a snapshot may
 * have? Names are E2B's: lowercase [a-z0-9-_]. E2B's "namespace/" before
 * them is refused: there is one team here. */
bool e2b_snapshot_name_valid(const char *name);

/* Begin a snapshot named name (NULL: none; may carry ":tag"): its staging
 * directory, with save/ made. E2B_ERR_INVALID for a bad name. */
int e2b_snapshot_begin(const char *name, struct e2b_snapshot_txn *txn, struct e2b_error **err);
/* Write meta (snapshotID, templateID, tag, name and names are filled in
 * here) and make the snapshot visible by one rename; a snapshot of the same
 * name and tag (or template ID and tag) it replaces is deleted. ret_meta:
 * what was written (may be NULL). */
int e2b_snapshot_commit(struct e2b_snapshot_txn *txn, json_t *meta, json_t **ret_meta,
                        struct e2b_error **err);
/* Throw the staging directory away and free txn (safe after commit). */
void e2b_snapshot_abort(struct e2b_snapshot_txn *txn);

/* Find a snapshot by its ID, template ID or name, each with or without
 * ":tag" (default "default"). ret_meta (new reference) and ret_dir may be
 * NULL. E2B_ERR_NOT_FOUND when none has it. */
int e2b_snapshot_find(const char *ref, json_t **ret_meta, char **ret_dir, struct e2b_error **err);
/* Every snapshot but forks' own, newest first (their snapshot.json). */
int e2b_snapshot_list(json_t **ret_list, struct e2b_error **err);
/* Delete: E2B_ERR_NOT_FOUND, or E2B_ERR_INVALID while a paused sandbox or
 * another snapshot needs its files. Running sandboxes restored from it go
 * on; its files are removed once the last of them ends. */
int e2b_snapshot_delete(const char *ref, struct e2b_error **err);
/* Delete the snapshot in dir (a fork's own, once its forks started). */
void e2b_snapshot_delete_dir(const char *dir);

/* Keep the snapshot in dir from being removed: a shared flock on its
 * .in-use through the fd returned (close-on-exec; closing it unpins, a
 * process that never does keeps it for its life). E2B_ERR_NOT_FOUND when
 * it was deleted meanwhile. */
int e2b_snapshot_pin(const char *dir, struct e2b_error **err);
/* Keep it for a save that outlives any process (a sandbox paused to disk,
 * another snapshot), until e2b_snapshot_release with the same holder. */
int e2b_snapshot_hold(const char *dir, const char *holder, struct e2b_error **err);
void e2b_snapshot_release(const char *dir, const char *holder);

/* Remove deleted snapshots nothing uses, and staging directories whose
 * maker died. Any store operation does it; safe to call any time. */
void e2b_snapshot_collect(void);

#endif
