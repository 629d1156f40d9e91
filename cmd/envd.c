/* envd.c - `e2b envd`: the guest agent run on the host (for tests, or to
 * serve a directory tree to E2B's SDKs). The same code is the static
 * `envd` binary inside sandboxes, with the same options (E2B_ENVD_OPTIONS);
 * the command is raw: no global options, `-v` is envd's own. */
#include "cmd.h"
#include "envd-server.h"

const struct e2b_opt opts_envd[] = { E2B_ENVD_OPTIONS, E2B_OPT_END };

int cmd_envd(struct e2b_ctx *ctx, struct e2b_args *args) { return e2b_envd_run(args); }
