/* local-sandbox.h - sandboxes on this machine: the verbs of the local backend.
 *
 * `create` resolves the template, writes the sandbox's state and starts its
 * supervisor (supervisor.h), which runs it on a runtime (runtime.h: Linux
 * namespaces today) and removes everything when it ends. The other verbs
 * work from any e2b process on the state directory (sandbox-state.h) and
 * reach the sandbox through its runtime's table: none of them knows which
 * runtime that is. state.json records it ("runtime": "ns" or "vm"): the
 * create's choice, else the template's ("runtime" in template.json), else
 * the caller's default (e2b serve --runtime), else auto.
 *
 * A template may have a snapshot of its runtime (e2b_local_template_snapshot):
 * a create restores it unless told not to, and boots afresh when it does not
 * fit (said in the sandbox's log). A pause saves the sandbox to disk where
 * its runtime can (sandbox-state.h); resume restores it.
 *
 * State: <runtime dir>/sandboxes/<id>/state.json, written atomically under a
 * lock; envd's socket is <runtime dir>/sandboxes/<id>/envd.sock; sandbox.log
 * (JSON lines of the supervisor and envd, rotated at 1 MiB). Nothing in that
 * directory is visible to, or writable from, the sandbox.
 */
#ifndef E2B_LOCAL_SANDBOX_H
#define E2B_LOCAL_SANDBOX_H

#include "json.h"
#include "sandbox-endpoint.h"

struct e2b_local_options {
    const char *template;  /* "host" or a template ID/name in the store */
    int timeout_s;
    json_t *metadata;      /* {str:str} or NULL */
    json_t *env_vars;      /* {str:str} or NULL */
    bool secure;           /* envd requires an access token */
    bool internet;         /* outbound network through slirp4netns */
    int cpu_count;         /* 0: template's or 2 */
    int memory_mb;         /* 0: template's or 1024 */
    int disk_mb;           /* writable layer size; 0: 1024 */
    int pids_max;          /* 0: 4096 */
    bool auto_pause;       /* at the timeout pause (E2B lifecycle onTimeout: pause), not kill */
    bool auto_resume;      /* paused, resumed by the next request through e2b serve */
    json_t *volume_mounts; /* [{name, path}]: volumes (volume-store.h) bound read-write at path */
    json_t *network;       /* {allowOut, denyOut, rules} as given (recorded), or NULL */
    json_t *network_rules; /* its rules with secrets filled (egress.h; never recorded), or NULL */
    const char *envd_path; /* NULL: found next to the e2b binary or installed */
    const char *runtime;   /* "ns", "vm", "auto"; NULL: the template's, else runtime_default */
    const char *runtime_default; /* NULL: "auto" (runtime.h: e2b_runtime_pick) */
    const char *kernel;    /* the vm runtime's guest kernel; NULL: found (vm-kernel.h) */
    bool no_snapshot;      /* boot afresh even where the template has a snapshot */
    const char *snapshot_dir; /* (e2b_local_template_snapshot) the sandbox will be saved here */
    const char
        *warm_pool; /* a warm sandbox of this pool (e2b serve --warm): waits for e2b_local_adopt */
};

/* Start a sandbox; returns when envd answers. ret_state: the state JSON. */
/* The static guest binary: $E2B_ENVD, next to the running e2b, or
 * installed; NULL when there is none. Caller frees. */
char *e2b_local_find_envd(void);

int e2b_local_create(const struct e2b_local_options *opts, json_t **ret_state,
                     struct e2b_error **err);
/* Boot the template (its current build) once, as a sandbox of the runtime
 * opts names (else the template's, else auto), wait for envd and the
 * template's ready command, and save it beside the build's files as the
 * template's snapshot (<build>/snapshot-<runtime>/): creates of that
 * runtime restore it (fresh ids, token, envs and clock) instead of booting.
 * E2B_ERR_UNSUPPORTED for a runtime that cannot save a sandbox. *ret_dir
 * (may be NULL): where it is. */
int e2b_local_template_snapshot(const struct e2b_local_options *opts, char **ret_dir,
                                struct e2b_error **err);
/* Hand out a warm sandbox (made with warm_pool, waiting, never seen by a
 * client) as if it were created now with o: its start time, timeout,
 * lifecycle, metadata, envs and access token become o's (envd takes the
 * envs and token through /init). Its log goes on (its start is in it, as
 * a new sandbox's). Its ID was made
 * with it and shown to nobody. E2B_ERR_NOT_FOUND when it is no warm
 * sandbox waiting (taken, or ended); a sandbox that cannot be handed out is
 * killed. */
int e2b_local_adopt(const char *id, const struct e2b_local_options *o, json_t **ret_state,
                    struct e2b_error **err);
/* State of every sandbox (reaping dead ones first), those paused to disk
 * too. */
int e2b_local_list(json_t **ret_states, struct e2b_error **err);
int e2b_local_get(const char *id, json_t **ret_state, struct e2b_error **err);
int e2b_local_kill(const char *id, struct e2b_error **err);
/* The sandbox ends (or pauses) after timeout_s more seconds of running: for
 * a paused one they count from its resume. */
int e2b_local_set_timeout(const char *id, int timeout_s, struct e2b_error **err);
/* Freeze it, or with to_disk (or on a runtime whose pause always saves)
 * save it to disk: its processes end and it lives on there. */
int e2b_local_pause(const char *id, bool to_disk, struct e2b_error **err);
/* Thaw (if paused) and set the time left to timeout_s (0: keep what was left).
 * rules: its network's rules with their secrets filled (as for the create),
 * or NULL: a sandbox restored from disk gets its egress filter anew. */
int e2b_local_resume(const char *id, int timeout_s, const json_t *rules, bool *ret_was_paused,
                     struct e2b_error **err);
/* {timestampUnix, cpuCount, cpuUsedPct, memUsed, memTotal, diskUsed, diskTotal} */
int e2b_local_metrics(const char *id, json_t **ret_metric, struct e2b_error **err);
/* The sandbox's log: JSON lines the supervisor and envd wrote. */
int e2b_local_logs(const char *id, json_t **ret_entries, struct e2b_error **err);
/* How to reach its envd (E2B_ERR_UNSUPPORTED while it is paused: a frozen
 * envd would take the request and never answer). */
int e2b_local_envd_endpoint(const char *id, struct e2b_envd_endpoint *ret, struct e2b_error **err);
/* Replace the outbound rules (network: {allowOut, denyOut, rules} as given;
 * rules: the same rules with their secrets filled, or NULL) of a sandbox
 * made with a network (internet or rules). */
int e2b_local_set_network(const char *id, const json_t *network, const json_t *rules, bool internet,
                          struct e2b_error **err);
/* The sandboxes that have the volume mounted: an E2B_ERR_EXISTS error
 * naming them, or 0. */
int e2b_local_volume_in_use(const char *volume_id, void *ud, struct e2b_error **err);
/* A TCP connection to port on the sandbox's own loopback. */
int e2b_local_port_connect(const char *id, int port, int *ret_fd, struct e2b_error **err);

#endif
