/* serve-spawn.h - sandbox creates (and resumes, snapshots, forks) of `e2b serve` run in a small helper.
 *
 * Creating a local sandbox forks three times (the CLI side, the supervisor,
 * the sandbox's init). Forked from the server, each copy takes the server's
 * whole address space (hundreds of mappings: thread stacks, malloc arenas)
 * and the copies keep running ordinary code (malloc, JSON, curl) although
 * other threads may have held locks at the fork. So the server forks one
 * helper first, while it is small and has one thread; every create is
 * handed to a fresh child of that helper, which runs the backend's create
 * and sends the result back. Parallel creates stay parallel.
 */
#ifndef E2B_SERVE_SPAWN_H
#define E2B_SERVE_SPAWN_H

#include "backend.h"

struct e2b_serve_spawner;

/* Fork the helper; call before starting threads. It ends when the server
 * does (its end of the control socket closes). */
int e2b_serve_spawner_start(struct e2b_backend *b, struct e2b_serve_spawner **ret, struct e2b_error **err);
/* The backend `e2b serve` answers with: `local`'s ops, but a create, a
 * resume of a paused sandbox (which starts its supervisor again, where the
 * runtime saved it to disk), a snapshot (a runtime may run helper programs
 * to save a sandbox) and a fork (snapshot and creates) run in a child of
 * the helper (s). Owns neither;
 * free it with e2b_backend_free before them. */
struct e2b_backend *e2b_serve_spawner_backend(struct e2b_serve_spawner *s, struct e2b_backend *local);
/* Close the control socket (the helper then exits) and reap it. */
void e2b_serve_spawner_stop(struct e2b_serve_spawner *s);

#endif
