/* local-snapshot.h - snapshots and forks of running local sandboxes.
 *
 * A snapshot of a running sandbox: it is paused for a moment, its runtime
 * saves it (runtime.h's `snapshot`: memory, processes, writable layer) into
 * the snapshot store (snapshot-store.h), and it is resumed, its id and
 * deadline untouched. A runtime that cannot save a sandbox with its memory
 * makes the call fail with the reason: never a copy of the files alone.
 * New sandboxes start from a snapshot by naming it as their template
 * (local-sandbox.h: e2b_local_create restores it: fresh id, token and
 * envs). A fork is a snapshot that is not listed, the sandboxes started
 * from it, and the snapshot deleted again (its files stay while the forks
 * run).
 */
#ifndef E2B_LOCAL_SNAPSHOT_H
#define E2B_LOCAL_SNAPSHOT_H

#include "json.h"

#define E2B_FORK_MAX 100 /* forks in one request (E2B's limit) */

/* Snapshot the running sandbox id as name (NULL: none; E2B's "name[:tag]").
 * ret_meta: the store's snapshot.json (snapshotID, names, ...).
 * E2B_ERR_NOT_FOUND (no such sandbox), E2B_ERR_EXISTS (it is paused or
 * starting), E2B_ERR_UNSUPPORTED (its runtime cannot), E2B_ERR_INVALID
 * (the name). */
int e2b_local_snapshot(const char *id, const char *name, json_t **ret_meta, struct e2b_error **err);

/* Fork the running sandbox id into count (1..E2B_FORK_MAX) new sandboxes,
 * each ending after timeout_s, started at once from one snapshot.
 * ret_results: an array of count entries, each {"sandbox": state} or
 * {"error": {"code": <e2b_errcode>, "message"}}: every fork succeeds or
 * fails alone. The call fails as a whole only when the snapshot does (the
 * errors of e2b_local_snapshot) or count is out of range. */
int e2b_local_fork(const char *id, int count, int timeout_s, json_t **ret_results,
                   struct e2b_error **err);

#endif
