/* serve-router.h - the envd router of `e2b serve`: requests for a sandbox
 * (E2b-Sandbox-Id/E2b-Sandbox-Port headers, or a <port>-<sandboxID>.<domain>
 * Host) go to its envd (49983) or to what listens on that port in it,
 * streamed both ways, upgrades relayed.
 *
 * One connection carries one sandbox request: the request and its answer
 * are framed (Content-Length or chunked), nothing past either is relayed,
 * the answer says "Connection: close" whatever the program in the sandbox
 * said, and the connection then ends. So a pooled client never sends its
 * next request, with another sandbox's token, down a socket that a program
 * in a sandbox still holds.
 */
#ifndef E2B_SERVE_ROUTER_H
#define E2B_SERVE_ROUTER_H

#include "serve-conn.h"
#include "http1.h"

/* 1: the request is for sandbox *ret_id, port *ret_port; 0: it is not (the
 * API's); <0: -status for a route that names a bad port (*ret_msg says
 * why; caller frees). */
int e2b_serve_route(const struct e2b_serve_opts *o, const struct e2b_http1_head *r, char **ret_id,
                    int *ret_port, char **ret_msg);

/* Relay the request whose head r was parsed from the start of c->in, and
 * the answer. The caller closes the connection afterwards. */
void e2b_serve_proxy(struct e2b_serve_conn *c, const struct e2b_http1_head *r, const char *id, int port);

#endif
