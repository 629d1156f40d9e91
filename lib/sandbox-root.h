/* sandbox-root.h - a sandbox's init: namespaces, root file system, envd.
 *
 * Called by the supervisor. The init process runs in new pid, mount, net,
 * ipc, uts and cgroup namespaces, builds the root (an overlay of the
 * template's tree or ext4 image with a size-limited tmpfs as the writable layer, or for
 * `host` the host's programs bound read-only under fresh tmpfs dirs), mounts
 * /proc, a minimal /dev and /run/e2b, pivots into it, drops capabilities,
 * sets no_new_privs and the seccomp filter, then runs envd and reaps.
 *
 * Nothing of the host's state directory is visible inside: init binds envd's
 * socket at <state_dir>/envd.sock before it pivots and hands envd the
 * listening fd; envd's stderr is a pipe to the supervisor; /run/e2b is a
 * small tmpfs of the sandbox's own.
 */
#ifndef E2B_SANDBOX_ROOT_H
#define E2B_SANDBOX_ROOT_H

#include "json.h"
#include <sys/types.h>

struct e2b_sandbox_root {
    bool host;          /* the built-in `host` template */
    char *lower;        /* template root tree (overlay lower dir), unless host or image */
    char *image;        /* or the template's rootfs.ext4: attached read-only to a loop
                         * device (autoclear) and mounted inside init's mount namespace,
                         * so it is detached when the sandbox's last process is gone */
    char *envd;         /* static envd binary on the host */
    char *state_dir;    /* <runtime>/sandboxes/<id>: envd.sock and init.log go there */
    char *user;         /* envd's default user */
    char *template_id;  /* for /.e2b where the template's own file lacks it */
    char *build_id;
    char *envd_init;    /* envd's /init body (JSON), handed to it on an fd: it
                         * listens with it applied; owned */
    int disk_mb;        /* size of the writable layer */
    int pids_max;       /* unprivileged: RLIMIT_NPROC inside (no pids cgroup) */
    bool internet;      /* outbound network through slirp4netns */
    json_t *volumes;    /* [{host, path}]: bound read-write at path (a reference, owned) */
    char *trust_pem;    /* a CA the sandbox's TLS clients trust (the egress CA), or NULL */
    bool userns;        /* unprivileged: a user namespace maps the caller to root
                         * (and its /etc/subuid range, via newuidmap, when it has one) */
    int ready_fd;       /* set by spawn: envd writes a byte here once it listens;
                         * EOF means init or envd died first */
    int log_fd;         /* set by spawn: envd's stdout and stderr (read end) */
    pid_t helper_pid;   /* set by spawn: slirp4netns, or 0 */
};

/* init's fd of the directory holding the sandbox's writable layer (a
 * tmpfs: upper/ and work/ of the overlay, or the root itself for `host`):
 * /proc/<init>/fd/3 from the host. */
#define E2B_SANDBOX_SCRATCH_FD 3

/* Fork init (in the caller's cgroup for this id), return its pid. Failures
 * inside init are written to <state_dir>/init.log. */
int e2b_sandbox_root_spawn(struct e2b_sandbox_root *r, const char *id, pid_t *ret_init_pid,
                           struct e2b_error **err);
/* Unprivileged: does this user have subordinate ids (so more than root is
 * mapped in the sandbox)? */
bool e2b_sandbox_userns_ranges(void);
void e2b_sandbox_root_release(struct e2b_sandbox_root *r);

/* A new network namespace with loopback up, as init makes its own, and in
 * it envd's listening socket at <listen_dir>/envd.sock: an fd of each (a
 * restore's, which CRIU puts the restored sandbox into and hands envd). */
int e2b_sandbox_netns_new(const char *listen_dir, int *ret_listen_fd, struct e2b_error **err);

/* Checkpoints (runtime-ns.c, with CRIU): the writable layer of the running
 * sandbox whose init is init_pid (frozen: a consistent copy) into a tar
 * file, through init's fd of it; xattrs, whiteouts and holes kept. */
int e2b_sandbox_root_save_layer(pid_t init_pid, const char *tar_path, struct e2b_error **err);
/* In a child made for a restore, which runs CRIU next: a mount namespace
 * of its own with the sandbox's root remade as init made it, the writable
 * layer (a tmpfs of r->disk_mb at <state_dir>/mnt) filled from layer_tar,
 * the template under it, /.e2b naming id. Every other mount comes back
 * with CRIU. Returns the fd of the layer's directory (what init holds as
 * E2B_SANDBOX_SCRATCH_FD) and sets *ret_root; on failure it writes why to
 * log_fd and exits 1. */
int e2b_sandbox_root_remake(const struct e2b_sandbox_root *r, const char *id, const char *layer_tar,
                            int log_fd, char **ret_root);

#endif
