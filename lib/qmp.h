/* qmp.h - a client of QEMU's machine protocol (QMP): JSON objects, one a
 * line, on a socket QEMU listens on (the vm runtime's <state dir>/qmp.sock).
 * QEMU takes one client at a time, so each use is short: connect (the
 * greeting, qmp_capabilities), a command or a few, close. Events that come
 * meanwhile are skipped.
 */
#ifndef E2B_QMP_H
#define E2B_QMP_H

#include "json.h"

struct e2b_qmp;

/* Over fd, a socket connected to QMP (owned from here). */
int e2b_qmp_open(int fd, int timeout_ms, struct e2b_qmp **ret, struct e2b_error **err);
/* Run cmd with args (NULL: none; not taken); *ret (if not NULL) gets its
 * "return". An "error" answer is E2B_ERR_GENERIC with QEMU's description. */
int e2b_qmp_execute(struct e2b_qmp *q, const char *cmd, json_t *args, int timeout_ms, json_t **ret,
                    struct e2b_error **err);
/* The same, passing fd with it (SCM_RIGHTS): "getfd" and "add-fd". */
int e2b_qmp_execute_fd(struct e2b_qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms,
                       json_t **ret, struct e2b_error **err);
void e2b_qmp_close(struct e2b_qmp *q);

#endif
