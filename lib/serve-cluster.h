/* serve-cluster.h - what `e2b serve` does as a cluster node beyond its API
 * (cluster.h, backend-cluster.h): joining and leaving with the server, and
 * serving a template's build to the other nodes
 * (GET /_cluster/templates/<templateID>/<buildID>, signed), streamed as the
 * tar of template-transfer.h.
 */
#ifndef E2B_SERVE_CLUSTER_H
#define E2B_SERVE_CLUSTER_H

#include "http1.h"
#include "serve-conn.h"

/* Join the cluster o names (o->cluster_url set) and put the routed backend
 * over o->backend in its place (o->cluster, o->here set). */
int e2b_serve_cluster_start(struct e2b_serve_opts *o, struct e2b_error **err);
/* Leave (the lease then runs out) and free what start made; o->backend is
 * the one start was given again. */
void e2b_serve_cluster_stop(struct e2b_serve_opts *o);

/* Is r a request for a template's build (answered by _export)? */
bool e2b_serve_cluster_is_export(const struct e2b_http1_head *r);
/* Check the signature, then send the build (or an error) and end the
 * connection. */
void e2b_serve_cluster_export(struct e2b_serve_conn *c, const struct e2b_http1_head *r,
                              const struct strbuf *body);

#endif
