/* serve-volumes.h - E2B's volumes in `e2b serve`: /volumes (the API key's)
 * and the files in them, /volumecontent/{volumeID}/file|dir|path (each
 * volume's token, as E2B's SDK sends it: Authorization: Bearer <token>),
 * through the backend's volumes area. Files stream both ways: an upload is
 * written as it arrives (into a temporary beside its name, renamed at the
 * end), a download sent as it is read. */
#ifndef E2B_SERVE_VOLUMES_H
#define E2B_SERVE_VOLUMES_H

#include "http1.h"
#include "serve-conn.h"
#include "serve-opts.h"

/* /volumes[/{id}], authenticated already. */
void e2b_serve_volumes(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                       const struct strbuf *body, struct e2b_serve_reply *out);
/* Is this a /volumecontent request (served by e2b_serve_volume_content,
 * before any body is read)? */
bool e2b_serve_volume_content_route(const struct e2b_http1_head *r);
/* Answer one and leave the connection to be closed. */
void e2b_serve_volume_content(struct e2b_serve_conn *c, const struct e2b_http1_head *r);

#endif
