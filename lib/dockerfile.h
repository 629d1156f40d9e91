/* dockerfile.h - parse a Dockerfile into stages of expanded instructions.
 *
 * Follows Docker's (BuildKit's) syntax rules:
 *
 *  - Parser directives `# syntax=...`, `# escape=\` or `` ` ``, `# check=...`
 *    only before anything else (the first comment that is not a known
 *    directive, blank line or instruction ends them); a directive given twice
 *    is an error. A UTF-8 byte order mark and CRLF line ends are accepted.
 *  - Comments are lines whose first non-blank character is '#'; a '#' later
 *    in a line is an ordinary character.
 *  - A line ending in the escape character (trailing blanks allowed)
 *    continues on the next line; comment lines and blank lines inside a
 *    continuation are skipped; the pieces are joined as written (no space
 *    added). End of file ends a continuation.
 *  - Heredocs for RUN, COPY and ADD (not in JSON form): words `<<NAME`,
 *    `<<-NAME` (strip leading tabs from the body and terminator), quoted
 *    `<<"NAME"` / `<<'NAME'` (no expansion), several per line, bodies read in
 *    order after the instruction's last line.
 *  - Exec (JSON array of strings) and shell forms for RUN, CMD, ENTRYPOINT
 *    and HEALTHCHECK CMD; text starting with '[' that is not such an array is
 *    shell form (Docker does the same). SHELL accepts only JSON.
 *  - Variable substitution (dockerfile-expand.h) where the builder does it:
 *    ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR, ARG
 *    defaults, RUN --mount values, ADD/COPY --chown --chmod --from --checksum
 *    and FROM --platform, plus COPY/ADD heredoc bodies when the delimiter is
 *    not quoted (quotes kept, \ escapes). RUN, CMD, ENTRYPOINT, SHELL,
 *    HEALTHCHECK, MAINTAINER and ONBUILD triggers are kept as written: the
 *    shell (or the child build) expands them.
 *  - Scopes: ARGs before the first FROM are global and only visible to FROM
 *    lines (image and --platform) and to a stage that redeclares them with
 *    `ARG NAME`. Build args override ARG defaults. ENV wins over ARG. Inside
 *    one ENV/ARG/LABEL instruction every value sees the variables as they
 *    were before it. A stage based on an earlier stage inherits its ENV; one
 *    based on an image starts from the image's ENV (build_args->image_env) or
 *    the default PATH. Automatic args TARGETPLATFORM TARGETOS TARGETARCH
 *    TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT are global;
 *    the proxy args (HTTP_PROXY, no_proxy, ...) need no ARG.
 *
 * Errors name the file and line, and the column when it is known:
 *   "e2b.Dockerfile:7:1: unknown instruction 'RUNN'".
 */
#ifndef E2B_DOCKERFILE_H
#define E2B_DOCKERFILE_H

#include "error.h"
#include <jansson.h>

enum e2b_df_kind {
    E2B_DF_ADD,
    E2B_DF_ARG,
    E2B_DF_CMD,
    E2B_DF_COPY,
    E2B_DF_ENTRYPOINT,
    E2B_DF_ENV,
    E2B_DF_EXPOSE,
    E2B_DF_FROM,
    E2B_DF_HEALTHCHECK,
    E2B_DF_LABEL,
    E2B_DF_MAINTAINER,
    E2B_DF_ONBUILD,
    E2B_DF_RUN,
    E2B_DF_SHELL,
    E2B_DF_STOPSIGNAL,
    E2B_DF_USER,
    E2B_DF_VOLUME,
    E2B_DF_WORKDIR,
};

/* Upper-case name of a kind ("RUN"). */
const char *e2b_df_kind_name(enum e2b_df_kind kind);

/* --flag or --flag=value, the value expanded where Docker expands it
 * (RUN --mount values are kept as written here; mounts[] has them expanded). */
struct e2b_df_flag {
    char *name;  /* without the dashes: "mount" */
    char *value; /* NULL for a bare boolean flag (--link) */
};

/* ENV, LABEL and ARG pairs, expanded. */
struct e2b_df_kv {
    char *key;
    char *value; /* NULL: ARG without a value in scope */
};

struct e2b_df_heredoc {
    char *name;       /* delimiter, quotes removed */
    char *content;    /* body, every line ending in \n; tabs stripped for <<-;
                         expanded for COPY/ADD when `expand` */
    bool expand;      /* delimiter was not quoted */
    bool strip_tabs;  /* <<- */
    int fd;           /* 3<<EOF: 3, else -1 */
    int line;         /* line of the first body line */
};

enum e2b_df_mount_type {
    E2B_DF_MOUNT_BIND,
    E2B_DF_MOUNT_CACHE,
    E2B_DF_MOUNT_TMPFS,
    E2B_DF_MOUNT_SECRET,
    E2B_DF_MOUNT_SSH,
};

enum e2b_df_sharing { E2B_DF_SHARING_SHARED, E2B_DF_SHARING_PRIVATE, E2B_DF_SHARING_LOCKED };

/* RUN --mount=..., values expanded. Defaults filled in as Docker does:
 * bind is read-only, secrets land in /run/secrets/<id>, ssh in
 * /run/buildkit/ssh_agent.<n> with id "default". */
struct e2b_df_mount {
    enum e2b_df_mount_type type;
    char *target;    /* may be NULL for a secret exposed as env only */
    char *source;    /* NULL: root of `from` (or of the context) */
    char *from;      /* stage name, index or image; NULL: build context */
    int from_stage;  /* index of the stage `from` names, else -1 */
    char *id;        /* cache, secret, ssh */
    char *env;       /* secret: environment variable to set */
    enum e2b_df_sharing sharing;
    bool readonly;
    bool required;
    long mode;       /* -1: default */
    long uid, gid;   /* -1: default */
    unsigned long long size; /* tmpfs bytes, 0: default */
};

struct e2b_df_healthcheck {
    bool none;                    /* HEALTHCHECK NONE */
    long long interval_ns;        /* 0: default */
    long long timeout_ns;
    long long start_period_ns;
    long long start_interval_ns;
    int retries;                  /* 0: default */
    char **test;                  /* ["CMD", argv...] or ["CMD-SHELL", "cmd"]; ["NONE"] */
};

struct e2b_df_instr {
    enum e2b_df_kind kind;
    char *name;       /* as written: "run", "Copy" */
    int line;         /* first line (1-based) */
    int end_line;     /* last line of the instruction itself (not its heredocs) */
    char *original;   /* the logical line: continuations joined, comments dropped */

    struct e2b_df_flag *flags;
    size_t n_flags;

    /* Arguments, expanded where Docker expands them, NULL-terminated:
     *   FROM: image [AS name]     RUN/CMD/ENTRYPOINT shell form: [command]
     *   exec form and SHELL: the array   COPY/ADD: sources..., dest
     *   (heredoc sources as written: "<<EOF")   ENV/LABEL/ARG: "key=value"
     *   EXPOSE: ports (split)   VOLUME: paths   HEALTHCHECK: "NONE" or the
     *   command after CMD (json says which form)   ONBUILD: [trigger text]
     *   WORKDIR USER STOPSIGNAL MAINTAINER: [value] */
    char **args;
    size_t n_args;
    bool json;        /* exec (JSON array) form */

    struct e2b_df_kv *kvs;   /* ENV, LABEL, ARG */
    size_t n_kvs;

    struct e2b_df_heredoc *heredocs;
    size_t n_heredocs;

    struct e2b_df_mount *mounts; /* RUN */
    size_t n_mounts;

    struct e2b_df_healthcheck *health; /* HEALTHCHECK */

    struct e2b_df_instr *trigger; /* ONBUILD: the trigger, parsed, not expanded */

    int from_stage;   /* COPY/ADD --from naming a stage: its index, else -1 */

    /* RUN: the build-time environment of the step, "KEY=VALUE": the stage's
     * ENV plus the ARGs in scope (ENV wins). */
    char **env;
};

struct e2b_df_stage {
    char *name;       /* lower-cased `AS` name, NULL if none */
    char *base;       /* FROM image, expanded ("scratch", a stage name, an image) */
    char *platform;   /* --platform, expanded; NULL if none */
    size_t index;
    int base_stage;   /* index of the earlier stage `base` names, else -1 */
    /* instrs[0] is the FROM instruction */
    struct e2b_df_instr *instrs;
    size_t n_instrs;
    char **env;       /* ENV at the end of the stage ("KEY=VALUE"), image config */
    size_t *deps;     /* stages this one needs (base, --from, mount from) */
    size_t n_deps;
};

struct e2b_dockerfile {
    char *name;       /* file name used in messages */
    char escape;      /* '\\' or '`' */
    char *syntax;     /* `# syntax=` value or NULL */
    char *check;      /* `# check=` value or NULL */
    struct e2b_df_instr *global_args; /* ARG instructions before the first FROM */
    size_t n_global_args;
    struct e2b_df_kv *globals;        /* their values (after build args) */
    size_t n_globals;
    struct e2b_df_stage *stages;
    size_t n_stages;
    char **unused_build_args;         /* build args no ARG declared (to warn about) */
};

/* Inputs from the command line. */
struct e2b_build_args {
    /* --build-arg values "KEY=VALUE"; a bare "KEY" takes the value of the
     * environment variable KEY and is ignored when that is unset. */
    const char *const *args;
    size_t n_args;
    const char *target_platform; /* "linux/arm64/v8"; NULL: this machine */
    const char *build_platform;  /* NULL: this machine */
    /* Optional: ENV of a base image ("KEY=VALUE" strv) so `ENV PATH=$PATH:/x`
     * sees the image's PATH. Return 0 with *ret NULL for "unknown". Without
     * it a stage from an image starts with the default PATH only. */
    int (*image_env)(void *userdata, const char *image, const char *platform, char ***ret,
                     struct e2b_error **err);
    void *userdata;
};

/* An octal mode (0 to 7777) or chmod(1)'s symbolic clauses (u+x,go-w), as
 * COPY --chmod takes them. */
bool e2b_dockerfile_chmod_valid(const char *s);

int e2b_dockerfile_parse(const char *name, const char *text, size_t len,
                         const struct e2b_build_args *build_args, struct e2b_dockerfile **ret,
                         struct e2b_error **err);
void e2b_dockerfile_free(struct e2b_dockerfile *df);
static inline void e2b_dockerfile_freep(struct e2b_dockerfile **df) { e2b_dockerfile_free(*df); }
#define _cleanup_dockerfile_ _cleanup_(e2b_dockerfile_freep)

/* Stage by AS name (case-insensitive) or index ("0"); NULL if none. */
const struct e2b_df_stage *e2b_dockerfile_find_stage(const struct e2b_dockerfile *df, const char *name);

/* --target: the stage to build (NULL or "": the last one) and which stages it
 * needs, transitively (*ret_needed: n_stages bools, caller frees). Errors
 * when the target names no stage. */
int e2b_dockerfile_select(const struct e2b_dockerfile *df, const char *target, size_t *ret_stage,
                          bool **ret_needed, struct e2b_error **err);

/* One instruction or the whole file as JSON (backs `template build --dry-run
 * --json`): {file, escape, syntax, global_args, stages: [{index, name, base,
 * platform, needed?, instructions: [{line, instruction, name, flags, args,
 * json, heredocs, ...}]}], target?, unused_build_args}. `needed` may be NULL
 * (all stages, no "needed" keys), else from e2b_dockerfile_select(). */
json_t *e2b_dockerfile_instr_to_json(const struct e2b_df_instr *in);
json_t *e2b_dockerfile_to_json(const struct e2b_dockerfile *df, const bool *needed, size_t target);

/* Flag value by name (last one wins), NULL if absent; *present tells a bare
 * boolean flag from an absent one. */
const char *e2b_df_flag(const struct e2b_df_instr *in, const char *name, bool *present);

/* Parse a Go duration ("1m30s", "500ms", "0") into nanoseconds. */
int e2b_df_parse_duration(const char *s, long long *ret_ns);

#endif
