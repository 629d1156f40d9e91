/* sandbox-state.h - a local sandbox's state directory, shared by the verbs
 * (local-sandbox.c, in any e2b process) and its supervisor (supervisor.c).
 *
 * <runtime dir>/sandboxes/<id>/
 *   state.json       the sandbox (JSON), replaced atomically under .lock
 *   .lock            serialises read-modify-write of state.json
 *   supervisor.lock  flock'd by the supervisor for the sandbox's whole life:
 *                    the sandbox is alive exactly while it is held
 *   sandbox.log(.1)  JSON lines of the supervisor and envd (only the
 *                    supervisor writes; rotated at E2B_SANDBOX_LOG_MAX)
 *   supervisor.log   the supervisor's own stdout and stderr
 *   envd.sock ...    what the runtime keeps there
 * Nothing in it is visible to, or writable from, the sandbox.
 * <runtime dir>/sandboxes/.ended/<id>: why a sandbox ended, for an hour.
 *
 * A sandbox paused to disk (its runtime has `snapshot`: runtime.h) has no
 * supervisor and no state directory: it is saved, on disk that outlives
 * the machine's uptime, in
 * <data dir>/sandboxes/<id>/
 *   state.json       its state: "paused", the time it had left (timeLeftMs)
 *   .lock            held by whoever resumes or removes it
 *   sandbox.log(.1)  its log so far
 *   ...              the runtime's save (vm: snapshot.json, vmstate, disk.ext4)
 * made as .new-<id> (with supervisor.lock held) and renamed into place once
 * whole. The verbs find it like a live one; resume restores it through a new
 * supervisor and then removes it. The reaper leaves it alone.
 */
#ifndef E2B_SANDBOX_STATE_H
#define E2B_SANDBOX_STATE_H

#include "json.h"

#include <sys/types.h>

#define E2B_SANDBOX_LOG_MAX (1 << 20)

char *e2b_sandboxes_dir(void);
char *e2b_sandbox_dir(const char *id);
/* 20 lowercase letters and digits (what e2b_random_id makes). */
bool e2b_sandbox_id_valid(const char *id);

/* Where sandboxes paused to disk are saved: <data dir>/sandboxes. */
char *e2b_saved_sandboxes_dir(void);
/* Is dir (from e2b_sandbox_load) a saved sandbox's? */
bool e2b_sandbox_is_saved(const char *dir);
/* Take a saved sandbox for resuming or removing it: its .lock, exclusive
 * and without waiting; -1 with E2B_ERR_EXISTS when another process has it. */
int e2b_sandbox_saved_claim(const char *id, const char *dir, struct e2b_error **err);

/* The state lock (.lock): an fd to close, or -1. */
int e2b_sandbox_state_lock(const char *dir);
int e2b_sandbox_state_read(const char *dir, json_t **ret, struct e2b_error **err);
int e2b_sandbox_state_write(const char *dir, json_t *state, struct e2b_error **err);

/* Make the sandbox's directory with supervisor.lock already held: the fd
 * of the lock (hand it to the supervisor), or -1. */
int e2b_sandbox_dir_create_held(const char *id, const char *dir, struct e2b_error **err);
/* Is supervisor.lock held (the sandbox alive)? */
bool e2b_sandbox_held(const char *dir);
/* Signal the supervisor, only while it still holds the sandbox. */
bool e2b_sandbox_signal_supervisor(const char *dir, pid_t sup, int sig);

/* An alive sandbox's directory and state (either may be NULL), or a saved
 * one's; E2B_ERR_NOT_FOUND for no such sandbox or one that has ended. */
int e2b_sandbox_load(const char *id, char **ret_dir, json_t **ret_state, struct e2b_error **err);
/* Change the state under its lock: fn edits st, which is then written, and
 * the supervisor told to read it again (SIGUSR1). */
int e2b_sandbox_update(const char *id, int (*fn)(const char *id, const char *dir, json_t *st, void *ud,
                                                 struct e2b_error **err),
                       void *ud, struct e2b_error **err);

/* running -> paused, through the sandbox's runtime: the verb, and the
 * supervisor at the timeout of an autoPause sandbox. Where the runtime
 * saves the sandbox (snapshot, and pause_saves or to_disk), it is saved to
 * disk, its state gets "savedTo", and its supervisor ends it and goes
 * (without noting an end): *ret_saved says so (may be NULL). to_disk on a
 * runtime that cannot save: E2B_ERR_UNSUPPORTED. */
int e2b_sandbox_pause(const char *id, bool to_disk, bool *ret_saved, struct e2b_error **err);

/* Why a sandbox ended ("timeout", "the guest kernel panicked: ..."), kept
 * for an hour in <runtime dir>/sandboxes/.ended/<id>, so that what asks
 * for it afterwards hears why it is gone. */
void e2b_sandbox_note_end(const char *id, const char *why);

/* Remove what sandboxes whose supervisor died left behind (their runtime's
 * remains too), stale half-made directories and old end notes. */
void e2b_sandbox_reap(void);

#endif
