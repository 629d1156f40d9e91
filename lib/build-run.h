/* build-run.h - the RUN executor of template builds.
 *
 * A step runs as pid 1 of new mount, pid, ipc and uts namespaces (and a
 * network namespace with only loopback, unless --network=host), pivoted
 * into the stage's merged root with /proc and a minimal /dev of its own,
 * its RUN --mount mounts attached inside that root, under the sandbox
 * seccomp filter with a container's capabilities, in a cgroup with the
 * build's limits, as USER in WORKDIR with ENV. Its output streams to the
 * caller; a failure reports the exit status and the last output. A builder
 * killed with -9 takes its step along (PDEATHSIG), and the next build
 * removes the step's cgroup (e2b_run_clean_stale).
 */
#ifndef E2B_BUILD_RUN_H
#define E2B_BUILD_RUN_H

#include "build-cache.h"
#include "build-src.h"
#include "dockerfile.h"
#include "json.h"

#define E2B_RUN_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* A RUN --mount, made ready by the builder as a detached mount (open_tree
 * or fsmount) that the step's process attaches inside its root. */
struct e2b_run_mount {
    int mfd;
    char *target;           /* in the root */
    bool file;              /* the target is a file (a bind of one file) */
    int lock_fd;            /* cache sharing=locked|shared: held for the step, else -1 */
};

struct e2b_run_spec {
    const char *root;       /* merged root to pivot into */
    char **argv;
    char **envp;
    char *script;           /* RUN <<EOF whose body starts with #!: run as the program */
    const char *workdir, *user;
    bool network_host;
    struct e2b_run_mount *mounts;
    size_t n_mounts;
    long memory_mb, cpu_count; /* cgroup limits; 0: none (the ready command has none) */
    size_t step;            /* names the step's cgroup: build-<pid>-<step> */
    int timeout_s;          /* >0: the step is killed at this deadline */
    void (*output)(void *data, const char *buf, size_t len); /* the step's output; may be NULL */
    void *data;
};

/* RUN's argv: exec form as is; shell form through SHELL (a JSON array, or
 * NULL: /bin/sh -c) with heredoc bodies appended the way a shell reads
 * them; `RUN <<EOF` alone runs the body as the script, and a body starting
 * with `#!` is the program itself (*script), run through its interpreter
 * like BuildKit. */
char **e2b_run_argv(const json_t *shell, const struct e2b_df_instr *in, char **script);
/* The step's environment: its ENV, with a default PATH. */
char **e2b_run_env(const struct e2b_df_instr *in);
/* Make the mounts of RUN --mount (cache dirs kept per template, binds from
 * the context or a stage, tmpfs) into rs->mounts, their sources hashed
 * into kc. Scratch space goes in tmpdir. */
int e2b_run_mounts(struct e2b_run_spec *rs, const struct e2b_df_instr *in, const struct e2b_build_src *src,
                   const struct e2b_build_cache *cache, const char *template_name, const char *tmpdir,
                   struct e2b_sha256 *kc, struct e2b_error **err);
/* Mount the host's file host_path read-only at target (a file) in the step. */
int e2b_run_bind_file(struct e2b_run_spec *rs, const char *host_path, const char *target, struct e2b_error **err);
/* Run the step to its end. what: put in front of the error ("ready command"), or NULL. */
int e2b_run_step(const struct e2b_run_spec *rs, const char *what, struct e2b_error **err);
void e2b_run_spec_free(struct e2b_run_spec *rs);
/* Remove the cgroups of steps whose builder was killed. */
void e2b_run_clean_stale(void);

#endif
