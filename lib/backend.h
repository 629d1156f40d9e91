/* backend.h - what the CLI and `e2b serve` ask of "where sandboxes live".
 *
 * Two implementations: local (this machine: the namespace runtime and the
 * template store) and remote (an E2B-compatible REST API: E2B cloud or
 * `e2b serve`). Sandboxes and templates travel as JSON objects in E2B's own
 * REST schema (shared/reference/e2b-protocol.md section 2), so the server
 * can send what the local backend returns, the remote backend can pass on
 * what the server sent, and the CLI prints either with lib/output.h.
 *
 *   sandbox (ListedSandbox / SandboxDetail): templateID, alias, sandboxID,
 *     clientID, startedAt, endAt (RFC 3339), cpuCount, memoryMB, diskSizeMB,
 *     metadata {}, state "running"|"paused", envdVersion, envdAccessToken?,
 *     allowInternetAccess, domain
 *   template: templateID, buildID, cpuCount, memoryMB, diskSizeMB, public,
 *     aliases [], names [], createdAt, updatedAt, envdVersion, buildStatus,
 *     buildCount, spawnCount, lastSpawnedAt, createdBy
 *   volume (VolumeAndToken): volumeID, name, token, and ours: quotaMB,
 *     createdAt, storage
 *   secret (Secret, never its value): secretID, name, metadata {},
 *     currentVersion, createdAt, updatedAt
 */
#ifndef E2B_BACKEND_H
#define E2B_BACKEND_H

#include "json.h"
#include "sandbox-endpoint.h"

struct e2b_sandbox_spec {
    const char *template;    /* template ID or alias; "base" when NULL */
    int timeout_s;           /* seconds until killed (or paused with auto_pause) */
    json_t *metadata;        /* {str:str} or NULL */
    json_t *env_vars;        /* {str:str} or NULL */
    bool secure;             /* envd requires an access token */
    bool allow_internet;
    bool auto_pause;
    bool auto_resume;        /* a paused sandbox resumes on the next request to it */
    json_t *volume_mounts;   /* [{name, path}] or NULL */
    json_t *network;         /* E2B's SandboxNetworkConfig {allowOut, denyOut, rules, ...} or NULL */
    int cpu_count;           /* 0: the template's */
    int memory_mb;           /* 0: the template's */
    int disk_mb;             /* writable layer size; 0: the default */
    int pids_max;            /* process limit; 0: the default (4096) */
    /* Local sandboxes only (E2B's API has no such fields): */
    const char *runtime;     /* "ns", "vm", "auto"; NULL: the template's, else runtime_default */
    const char *runtime_default; /* e2b serve --runtime; NULL: auto */
    const char *kernel;      /* the vm runtime's guest kernel; NULL: found */
    const char *warm_pool;   /* e2b serve --warm: a warm sandbox of this pool, for adopt */
    /* Cluster (backend-cluster.c): what the node placing a create tells the
     * node it places it on: "<templateID> <buildID> <address of a node that
     * has that build, or ->". Sent only between nodes, signed. */
    const char *cluster_template;
};

struct e2b_volume;

struct e2b_sandbox_filter {
    const char *states;      /* "running", "paused", "running,paused"; NULL: running */
    json_t *metadata;        /* {str:str} all must match, or NULL */
    const char *template;    /* ID or alias, or NULL */
    int limit;               /* 0: no limit */
    const char *next_token;  /* from a previous page, or NULL */
};

struct e2b_backend;

/* The interface in areas, as E2B's API has them (`e2b serve` grows by area:
 * a new one is one more member of struct e2b_backend_ops). */

/* Sandboxes: E2B's /sandboxes. */
struct e2b_sandbox_ops {
    int (*create)(struct e2b_backend *b, const struct e2b_sandbox_spec *spec, json_t **ret_sandbox,
                  struct e2b_error **err);
    /* ret_list: JSON array of sandboxes; ret_next_token: NULL on the last page. */
    int (*list)(struct e2b_backend *b, const struct e2b_sandbox_filter *filter, json_t **ret_list,
                char **ret_next_token, struct e2b_error **err);
    int (*get)(struct e2b_backend *b, const char *id, json_t **ret_sandbox, struct e2b_error **err);
    int (*kill)(struct e2b_backend *b, const char *id, struct e2b_error **err);
    /* Overwrite the time left: the sandbox ends timeout_s from now. */
    int (*set_timeout)(struct e2b_backend *b, const char *id, int timeout_s, struct e2b_error **err);
    /* to_disk: save it and free its memory (locally where the runtime can:
     * `ns` with CRIU; a `vm` always is); E2B's cloud always pauses so. */
    int (*pause)(struct e2b_backend *b, const char *id, bool to_disk, struct e2b_error **err);
    /* Resume (or extend when running) with a new timeout; *ret_resumed tells which. */
    int (*connect)(struct e2b_backend *b, const char *id, int timeout_s, json_t **ret_sandbox,
                   bool *ret_resumed, struct e2b_error **err);
    /* JSON array of SandboxMetric {timestampUnix, cpuCount, cpuUsedPct, memUsed, memTotal, diskUsed, diskTotal}. */
    int (*metrics)(struct e2b_backend *b, const char *id, json_t **ret_list, struct e2b_error **err);
    /* JSON array of log entries {timestamp, level, message, fields{}}. */
    int (*logs)(struct e2b_backend *b, const char *id, json_t **ret_list, struct e2b_error **err);
    /* Hand out a warm sandbox (created with spec->warm_pool; its sandbox
     * JSON says "warmPool") as if it were created now with spec: its
     * timeout, metadata, envs, token. E2B_ERR_NOT_FOUND when it is not one
     * waiting; E2B_ERR_UNSUPPORTED where sandboxes are not on this machine. */
    int (*adopt)(struct e2b_backend *b, const char *id, const struct e2b_sandbox_spec *spec,
                 json_t **ret_sandbox, struct e2b_error **err);
    /* Replace the outbound rules of a running sandbox: E2B's
     * SandboxNetworkUpdateConfig {allowOut, denyOut, rules, allow_internet_access}. */
    int (*update_network)(struct e2b_backend *b, const char *id, const json_t *network,
                          struct e2b_error **err);
};

/* Traffic into a sandbox, what E2B's edge carries: to its envd, to its ports. */
struct e2b_edge_ops {
    int (*envd_endpoint)(struct e2b_backend *b, const char *id, struct e2b_envd_endpoint *ret,
                         struct e2b_error **err);
    /* A TCP connection to `port` on the sandbox's own loopback (what E2B's
     * edge reaches as <port>-<id>.<domain>). Errors: E2B_ERR_NOT_FOUND (no
     * such sandbox), E2B_ERR_NETWORK (nothing listens there), others.
     * NULL where sandboxes are not on this machine (remote). */
    int (*port_connect)(struct e2b_backend *b, const char *id, int port, int *ret_fd,
                        struct e2b_error **err);
    /* Where the sandbox's traffic is served: 0 and *ret_base NULL here (then
     * envd_endpoint and port_connect reach it), or the base URL of the node
     * to relay it to (caller frees). NULL where it is always here. */
    int (*forward)(struct e2b_backend *b, const char *id, char **ret_base, struct e2b_error **err);
};

/* Templates: E2B's /templates. */
struct e2b_template_ops {
    int (*list)(struct e2b_backend *b, json_t **ret_list, struct e2b_error **err);
    int (*get)(struct e2b_backend *b, const char *id_or_alias, json_t **ret_template,
               struct e2b_error **err);
    int (*delete)(struct e2b_backend *b, const char *id_or_alias, struct e2b_error **err);
};

struct e2b_snapshot_filter {
    const char *sandbox_id; /* taken of this sandbox, or NULL */
    const char *name;       /* its ID or name, optionally ":tag", or NULL */
    int limit;              /* 0: the API's default */
    const char *next_token; /* from a previous page, or NULL */
};

/* Snapshots of running sandboxes: E2B's POST /sandboxes/{id}/snapshots,
 * GET /snapshots, DELETE /templates/{snapshotID}, POST /sandboxes/{id}/fork.
 * A snapshot's ID starts sandboxes as a template name does
 * (sandboxes.create). snapshot: SnapshotInfo {snapshotID, names} (the local
 * backend adds sandboxID, runtime, createdAt). */
struct e2b_snapshot_ops {
    /* name: NULL, or E2B's "name[:tag]". */
    int (*create)(struct e2b_backend *b, const char *sandbox_id, const char *name,
                  json_t **ret_snapshot, struct e2b_error **err);
    /* Newest first; ret_next_token: NULL on the last page. */
    int (*list)(struct e2b_backend *b, const struct e2b_snapshot_filter *filter, json_t **ret_list,
                char **ret_next_token, struct e2b_error **err);
    int (*delete)(struct e2b_backend *b, const char *snapshot_id, struct e2b_error **err);
    /* count new sandboxes from one snapshot of the running sandbox, each
     * ending timeout_s from now. ret_results: E2B's SandboxForkResult, one
     * a fork: {"sandbox": sandbox} or {"error": {"code": HTTP status,
     * "message"}}. */
    int (*fork)(struct e2b_backend *b, const char *sandbox_id, int count, int timeout_s,
                json_t **ret_results, struct e2b_error **err);
};

/* Volumes: E2B's /volumes, and the files in them (/volumecontent). */
struct e2b_volume_ops {
    int (*create)(struct e2b_backend *b, const char *name, long long quota_mb, json_t **ret_volume,
                  struct e2b_error **err);
    int (*list)(struct e2b_backend *b, json_t **ret_list, struct e2b_error **err);
    int (*get)(struct e2b_backend *b, const char *id_or_name, json_t **ret_volume, struct e2b_error **err);
    /* E2B_ERR_EXISTS while a sandbox has it mounted. */
    int (*delete)(struct e2b_backend *b, const char *id_or_name, struct e2b_error **err);
    /* Entries (VolumeEntryStat) below path, depth levels down. */
    int (*ls)(struct e2b_backend *b, const char *volume, const char *path, int depth, json_t **ret_list,
              struct e2b_error **err);
    /* A file's bytes to out_fd; in_fd's bytes into a file (its entry in *ret). */
    int (*read)(struct e2b_backend *b, const char *volume, const char *path, int out_fd,
                struct e2b_error **err);
    int (*write)(struct e2b_backend *b, const char *volume, const char *path, int in_fd, json_t **ret_entry,
                 struct e2b_error **err);
    /* The volume on this machine, open (volume-store.h), for serving its
     * files; NULL where volumes are not here (remote). */
    int (*open)(struct e2b_backend *b, const char *id_or_name, struct e2b_volume *ret,
                struct e2b_error **err);
};

/* Secrets: E2B's /secrets. No op returns a value. */
struct e2b_secret_ops {
    int (*create)(struct e2b_backend *b, const char *name, const char *value, const json_t *metadata,
                  json_t **ret_secret, struct e2b_error **err);
    int (*list)(struct e2b_backend *b, json_t **ret_list, struct e2b_error **err);
    int (*get)(struct e2b_backend *b, const char *id_or_name, json_t **ret_secret, struct e2b_error **err);
    int (*update)(struct e2b_backend *b, const char *id_or_name, const char *value, const json_t *metadata,
                  json_t **ret_secret, struct e2b_error **err);
    int (*delete)(struct e2b_backend *b, const char *id_or_name, struct e2b_error **err);
};

/* An area filled from a backend's functions named <prefix><op> (l_create,
 * l_list ... r_template_delete): a backend that lacks one does not compile,
 * where a NULL op would crash the CLI only when called. */
#define E2B_SANDBOX_OPS(p)                                                       \
    {                                                                            \
        .create = p##create, .list = p##list, .get = p##get, .kill = p##kill,    \
        .set_timeout = p##set_timeout, .pause = p##pause, .connect = p##connect, \
        .metrics = p##metrics, .logs = p##logs, .adopt = p##adopt,               \
        .update_network = p##update_network,                                     \
    }
#define E2B_TEMPLATE_OPS(p)                                 \
    {                                                       \
        .list = p##list, .get = p##get, .delete = p##delete \
    }
#define E2B_VOLUME_OPS(p, open_op)                                                          \
    {                                                                                       \
        .create = p##create, .list = p##list, .get = p##get, .delete = p##delete,           \
        .ls = p##ls, .read = p##read, .write = p##write, .open = open_op,                   \
    }
#define E2B_SECRET_OPS(p)                                                                   \
    {                                                                                       \
        .create = p##create, .list = p##list, .get = p##get, .update = p##update,           \
        .delete = p##delete,                                                                \
    }

#define E2B_SNAPSHOT_OPS(p)                                                         \
    {                                                                               \
        .create = p##create, .list = p##list, .delete = p##delete, .fork = p##fork, \
    }

struct e2b_backend_ops {
    const char *name; /* "local", "remote" or "cluster" */
    struct e2b_sandbox_ops sandboxes;
    struct e2b_edge_ops edge;
    struct e2b_template_ops templates;
    struct e2b_snapshot_ops snapshots;
    struct e2b_volume_ops volumes;
    struct e2b_secret_ops secrets;
    void (*free)(struct e2b_backend *b);
};

struct e2b_backend {
    const struct e2b_backend_ops *ops;
    void *impl;
};

/* Pick the backend for a command line: remote when an API URL is configured
 * (flag, E2B_API_URL, E2B_DOMAIN or `auth configure`), local otherwise. */
int e2b_backend_open(const char *flag_api_url, const char *flag_api_key, struct e2b_backend **ret,
                     struct e2b_error **err);
void e2b_backend_free(struct e2b_backend *b);
static inline void e2b_backend_freep(struct e2b_backend **b) { e2b_backend_free(*b); }
#define _cleanup_backend_ _cleanup_(e2b_backend_freep)

/* Constructors (backend-local.c, backend-remote.c). */
int e2b_backend_local_new(struct e2b_backend **ret, struct e2b_error **err);
int e2b_backend_remote_new(const char *api_url, const char *api_key, const char *sandbox_url,
                           struct e2b_backend **ret, struct e2b_error **err);
/* The same for a call between cluster nodes: each request signed by
 * sign(ud, method, target, body, len, headers) instead of an API key. */
typedef void e2b_backend_signer(void *ud, const char *method, const char *target, const void *body,
                                size_t len, char *headers[2]);
int e2b_backend_remote_new_signed(const char *api_url, e2b_backend_signer *sign, void *ud,
                                  struct e2b_backend **ret, struct e2b_error **err);

#endif
