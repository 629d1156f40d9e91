/* serve-warm.h - warm sandboxes of `e2b serve --warm TEMPLATE=N`.
 *
 * A create is mostly waiting: a supervisor forked, namespaces or a VM
 * made, envd started (or a snapshot restored). Under load those creates
 * queue for the CPU. With a pool, e2b serve keeps N sandboxes of a template
 * started ahead, each made like any create (a VM template's snapshot
 * restored, an ns sandbox pre-created) but marked as the pool's
 * ("warmPool" in its state), so no API call lists or reaches it. A create
 * of that template takes one and hands it out (the backend's adopt): the
 * create's timeout, lifecycle, metadata, envs and access token are applied
 * then (envd takes the envs and token through /init, as a restored
 * snapshot's does), its start time is the hand-out's and its log starts
 * there. Its ID was made with it: an ID names the sandbox's state
 * directory, cgroups, sockets and QEMU, so it cannot change, but it is
 * random and no client saw it before, so a warm sandbox cannot be told
 * from a new one. The pool then makes another in the background.
 *
 * A create takes a warm sandbox only when it asks for nothing the pool's
 * sandboxes were not made with: the same template (as configured, its ID
 * or one of its names), the server's internet default. Otherwise, or when
 * the pool is empty, it is an ordinary create. Warm sandboxes left by a
 * server that died are taken into the pool again when it starts; a server
 * that stops kills its own.
 */
#ifndef E2B_SERVE_WARM_H
#define E2B_SERVE_WARM_H

#include "serve-opts.h"

struct e2b_serve_warm;

/* "TEMPLATE=N" (N 1..E2B_WARM_MAX) into pools {template: N}; an error
 * names what is wrong. */
#define E2B_WARM_MAX 256
int e2b_serve_warm_parse(const char *arg, json_t *pools, struct e2b_error **err);
/* pools: {template: N} (a config file's "warm" object; checked here).
 * Starts keeping them filled with creates of b, this machine's backend
 * (serve-spawn.h's: its creates fork from the helper), which also hands
 * them out; o for the server's defaults. */
int e2b_serve_warm_start(const struct e2b_serve_opts *o, struct e2b_backend *b,
                         const json_t *pools, struct e2b_serve_warm **ret, struct e2b_error **err);
/* A warm sandbox for this create, handed out: 1 and *ret_sandbox (E2B's
 * sandbox JSON), or 0 when no pool fits the create or none is ready. */
int e2b_serve_warm_take(struct e2b_serve_warm *w, const struct e2b_sandbox_spec *spec,
                        json_t **ret_sandbox);
/* Stop filling and kill the sandboxes still waiting (NULL: nothing). */
void e2b_serve_warm_stop(struct e2b_serve_warm *w);

#endif
