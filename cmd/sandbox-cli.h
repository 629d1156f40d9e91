/* sandbox-cli.h - what the sandbox and template verbs of cmd/ share: opening
 * the backend, KEY=VALUE lists, reaching a sandbox's envd, the terminal, and
 * the sandbox IDs and template names shell completion offers. */
#ifndef E2B_SANDBOX_CLI_H
#define E2B_SANDBOX_CLI_H

#include "backend.h"
#include "cmd.h"

/* Open the backend for this command line; prints the error and returns 1. */
int e2b_cli_open_backend(struct e2b_ctx *ctx, struct e2b_backend **ret);
/* KEY=VALUE list to a JSON object; prints a usage error and returns 2. */
int e2b_cli_parse_kv(const char *const *list, const char *what, json_t **ret);
/* The envd of the sandbox named by the "sandbox" argument, or the one given
 * with --envd; prints the error and returns -1. *b may be left NULL. */
int e2b_cli_envd_endpoint(struct e2b_ctx *ctx, struct e2b_args *args, struct e2b_backend **b,
                          struct e2b_envd_endpoint *ep);
/* An interactive terminal (PTY) in a sandbox until its shell exits; returns
 * the shell's exit status. envs: NULL-terminated KEY=VALUE list or NULL. */
int e2b_cli_terminal(struct e2b_ctx *ctx, struct e2b_backend *b, const char *sandbox_id,
                     const char *user, const char *cwd, const char *const *envs);

/* Shell completion (`e2b __complete`): print the sandbox IDs, template names
 * starting with prefix, one a line. Local state only: fast, no network. */
void e2b_cli_complete_sandboxes(const char *prefix);
void e2b_cli_complete_templates(const char *prefix);
void e2b_cli_complete_volumes(const char *prefix);

#endif
