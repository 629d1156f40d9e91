/* runtime.h - what runs a local sandbox, behind one table of operations.
 *
 * The supervisor (supervisor.c) starts, watches and stops a sandbox through
 * its runtime; the verbs (local-sandbox.c) pause, resume, measure and reach
 * it through the same table, found by the name state.json records under
 * "runtime". Nothing above them (the local backend, serve, the CLI) knows
 * which runtime runs a sandbox, and no caller tests for one: a runtime is
 * one module that fills this table (runtime-ns.c: Linux namespaces;
 * runtime-vm.c: a QEMU microVM).
 *
 * Every runtime offers envd on the same channel, a unix socket in the
 * sandbox's state directory, so the envd client, serve's router and the
 * SDKs do not change with it.
 *
 * Two kinds of process call a runtime: the supervisor (prepare's caller
 * forks it; start, then stop once the sandbox ends), and any e2b process
 * holding the sandbox's state directory (pause, resume, envd_channel,
 * port_connect, stats; stop when reaping a sandbox whose supervisor died).
 * So whatever a runtime needs later must be in the state directory or in
 * state.json (the supervisor records run.pid there as "initPid").
 */
#ifndef E2B_RUNTIME_H
#define E2B_RUNTIME_H

#include "json.h"

#include <sys/types.h>

/* How long start may wait for envd to answer. */
#define E2B_RUNTIME_READY_MS 30000

/* One sandbox as a runtime sees it. */
struct e2b_runtime_sandbox {
    const char *id;
    const char *dir;           /* state directory: <runtime dir>/sandboxes/<id> */
    const json_t *state;       /* its state.json (NULL in prepare) */
};

/* What to run: filled by the creating process, the runtime's choices made
 * by prepare. Strings belong to the caller. */
struct e2b_runtime_spec {
    const char *template_name; /* as asked for, for messages */
    const char *template_id, *build_id;
    bool host;                 /* the built-in `host` template: the host's own programs */
    const char *rootfs_tree;   /* the template's rootfs/ directory, or NULL */
    const char *rootfs_image;  /* its rootfs.ext4, or NULL (prepare keeps the one it runs) */
    const char *envd;          /* the static guest agent, on the host */
    const char *kernel;        /* vm: the guest kernel (--kernel), or NULL: found */
    const char *user;          /* envd's default user */
    const char *envd_init;     /* envd's /init body (JSON); set by the supervisor */
    unsigned cpu_count;
    int memory_mb;
    int disk_mb;               /* size of the writable layer */
    int pids_max;
    bool internet;             /* outbound network */
    const char *trust_pem;     /* a CA its TLS clients trust besides the root's own (the
                                * egress CA, egress-tls.h; at /run/e2b/egress-ca.pem and
                                * in the system bundle), or NULL */
    /* Set by prepare: the runtime takes volumes as their ext4 images
     * (block devices for a kernel of its own), not as directories of
     * this machine. */
    bool volume_images;
    json_t *volumes;           /* [{host, path}]: directories bound read-write at path, or
                                * with volume_images [{image, path}]; or NULL */
    bool unprivileged;         /* the caller is not root */
    /* The sandbox will be saved as its template's snapshot into this
     * directory once it is ready (NULL: it will not): a runtime may keep
     * its memory there from the start (vm: a file QEMU maps shared), so
     * that the save is only the rest and every sandbox restored from it
     * maps the same pages. */
    const char *snapshot_dir;
    /* restore only: the save it restores stays while the sandbox runs (a
     * template's snapshot or a snapshot of the snapshot store, pinned by
     * the supervisor), so the sandbox may share its files instead of
     * copying them (vm: its disk becomes the backing file of a
     * copy-on-write overlay). false: the save goes once the sandbox runs
     * (a resume from disk): take what it needs. */
    bool restore_shared;
};

/* A started sandbox, in its supervisor. */
struct e2b_runtime_run {
    pid_t pid;                 /* the supervisor's child whose end is the sandbox's end; -1: none */
    int log_fd;                /* the guest's output (envd's stdout and stderr), read end; -1: none */
    void *priv;                /* the runtime's own */
};

/* Figures of a running sandbox (metrics). */
struct e2b_runtime_stats {
    uint64_t cpu_usage_ns;     /* CPU time used, all CPUs */
    uint64_t memory_bytes;
    uint64_t pids;
    bool has_disk;             /* the writable layer's file system: */
    uint64_t disk_used, disk_total;
};

struct e2b_runtime_ops {
    const char *name;          /* recorded in state.json: "ns" */
    /* In the creating process, before the supervisor exists: refuse what
     * this runtime cannot run (fail early, nothing to clean), choose among
     * the template's root file systems, and note in the state what it will
     * and will not enforce. */
    int (*prepare)(struct e2b_runtime_spec *spec, json_t *state, struct e2b_error **err);
    /* In the supervisor: start the sandbox; returns once envd listens on
     * the envd channel with its /init applied. stop is called afterwards
     * whether start succeeded or not. */
    int (*start)(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                 struct e2b_runtime_run *ret, struct e2b_error **err);
    /* Why the sandbox ended, in words for its log, once run->pid exited with
     * `status` (waitpid's); malloc'd. */
    char *(*ended)(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_run *run, int status);
    /* End the sandbox and remove what the runtime made for it outside the
     * state directory (the supervisor removes that). run: the supervisor's,
     * or NULL when reaping a sandbox whose supervisor died. Quiet (it runs
     * on the way out), safe to repeat. */
    void (*stop)(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_run *run);
    /* Stop every process of the sandbox where it stands, and go on. */
    int (*pause)(const struct e2b_runtime_sandbox *sb, struct e2b_error **err);
    int (*resume)(const struct e2b_runtime_sandbox *sb, struct e2b_error **err);
    /* Save a paused sandbox's processes, memory and writable layer into
     * dir (a new directory, on disk, that the caller makes and later
     * removes), so that it holds no memory once stopped; and start one from
     * such a save, as start does: the sandbox it was, resumed, or a new
     * sandbox (sb, spec) from its template's snapshot or from a snapshot of
     * another sandbox (fresh id, token and envs: spec->envd_init). After
     * snapshot the sandbox is still paused and can be resumed (a snapshot
     * of a running sandbox: pause, snapshot, resume; it runs on as it was)
     * or stopped (pause to disk). snapshot need not sync what it wrote:
     * the caller does (e2b_fsync_dir), after the sandbox runs again where
     * it goes on, so the sandbox stands still only for the save itself. A
     * save may name files outside dir that
     * it needs (vm: the backing file of a sandbox's disk overlay); the
     * caller keeps those (snapshot-store.h: holds). restore fails with
     * E2B_ERR_UNSUPPORTED when the save does not fit this machine (another
     * kernel or emulator: the caller may start the sandbox afresh) and
     * E2B_ERR_INVALID when it is damaged; snapshot fails with
     * E2B_ERR_UNSUPPORTED, saying why, for a sandbox it cannot save (ns:
     * CRIU's reason). NULL where the runtime cannot: its pause keeps the
     * sandbox in memory. */
    int (*snapshot)(const struct e2b_runtime_sandbox *sb, const char *dir, struct e2b_error **err);
    /* With snapshot: every pause saves to disk (vm); else only one asked
     * to (`pause --to-disk`), and a plain pause stops it in memory. */
    bool pause_saves;
    int (*restore)(const struct e2b_runtime_sandbox *sb, const struct e2b_runtime_spec *spec,
                   const char *dir, struct e2b_runtime_run *ret, struct e2b_error **err);
    /* Where envd listens: "unix:<state dir>/envd.sock". */
    int (*envd_channel)(const struct e2b_runtime_sandbox *sb, char **ret_base, struct e2b_error **err);
    /* A TCP connection to port on the sandbox's own loopback (blocking fd).
     * Errors: E2B_ERR_NETWORK when nothing listens there. */
    int (*port_connect)(const struct e2b_runtime_sandbox *sb, int port, int *ret_fd,
                        struct e2b_error **err);
    int (*stats)(const struct e2b_runtime_sandbox *sb, struct e2b_runtime_stats *ret,
                 struct e2b_error **err);
};

/* A runtime's table from its functions named <prefix><op> (ns_start ...):
 * every op but snapshot and restore, which a runtime sets after it when it
 * has them. A runtime that lacks one of these does not compile. */
#define E2B_RUNTIME_OPS(name_, p)                                                              \
    .name = name_, .prepare = p##prepare, .start = p##start, .ended = p##ended, .stop = p##stop, \
    .pause = p##pause, .resume = p##resume, .envd_channel = p##envd_channel,                    \
    .port_connect = p##port_connect, .stats = p##stats

/* The runtimes, one module each. */
extern const struct e2b_runtime_ops e2b_runtime_ns;
extern const struct e2b_runtime_ops e2b_runtime_vm;

/* What a sandbox runs on when nobody chose: the first of the list. */
const struct e2b_runtime_ops *e2b_runtime_default(void);
/* The runtime for a new sandbox: name is "ns", "vm" or "auto" (or NULL,
 * the same): vm where KVM can run the guest (vm-accel.h), there is a guest
 * kernel (kernel, or one found: vm-kernel.h) and the template is not the
 * host's own programs; else ns. */
const struct e2b_runtime_ops *e2b_runtime_pick(const char *name, bool host_template, const char *kernel,
                                               struct e2b_error **err);
/* The runtime a sandbox's state names ("ns" for state written before
 * sandboxes recorded theirs); NULL with an error if unknown. */
const struct e2b_runtime_ops *e2b_runtime_of(const json_t *state, struct e2b_error **err);

#endif
