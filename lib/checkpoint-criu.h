/* checkpoint-criu.h - checkpoints of process trees with their memory
 * through CRIU, the `criu` program, run as podman (through crun or runc)
 * runs it: `criu dump` of a tree into a directory of images, and
 * `criu restore` of one into new namespaces. What a tree uses outside
 * itself (its network namespace, sockets and pipes whose other end is on
 * the host, files of the host) is named external on dump (--external) and
 * handed in again as descriptors on restore (--inherit-fd): the caller
 * (runtime-ns.c) decides which.
 *
 * Which criu: $E2B_CRIU, else `criu` on PATH. A failure says CRIU's own
 * reason, the first errors of its log, and where the whole log is; where
 * criu cannot run on this machine at all (not installed, too old for the
 * kernel) it says that instead, with E2B_ERR_UNSUPPORTED.
 */
#ifndef E2B_CHECKPOINT_CRIU_H
#define E2B_CHECKPOINT_CRIU_H

#include "error.h"

#include <sys/types.h>

/* What a dump keeps of files deleted while a process still has them open
 * (CRIU's ghost files); a larger one fails the dump, saying so. */
#define E2B_CRIU_GHOST_LIMIT "16M"

struct e2b_criu_dump {
    pid_t pid;                 /* the tree's root (a host pid) */
    const char *images_dir;    /* made by the caller, empty */
    const char *log;           /* criu's log (a path) */
    const char *freeze_cgroup; /* the cgroup directory whose freezer holds the whole tree */
    char **externals;          /* --external values (NULL-terminated) */
    bool leave_running;        /* the tree goes on afterwards (else it is killed) */
};

/* Dump the tree; its state as the freezer had it stays (a frozen tree
 * stays frozen). */
int e2b_criu_dump(const struct e2b_criu_dump *d, struct e2b_error **err);

struct e2b_criu_restore {
    const char *images_dir;
    const char *work_dir; /* for restore.log and the pid file */
    const char *root;     /* the new root directory, mounted where criu runs */
    char **externals;     /* --external values */
    char **inherit;       /* --inherit-fd values: "fd[N]:KEY" */
    char **cgroup_roots;  /* --cgroup-root values: "[controller:]/path" */
};

/* In a child made for it: exec `criu restore` (in this process, which
 * must be where the new root is mounted). The restored tree's root
 * becomes a child of this child's parent (--restore-sibling), and runs
 * on once criu exits. Never returns: a failed exec writes to the log and
 * exits 127. */
_noreturn_ void e2b_criu_restore_exec(const struct e2b_criu_restore *r);
/* Once that child ended with (waitpid's) status: the restored root's pid,
 * or why the restore failed (CRIU's reason). */
int e2b_criu_restore_finish(const struct e2b_criu_restore *r, int status, pid_t *ret_pid,
                            struct e2b_error **err);

#endif
