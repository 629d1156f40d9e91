/* backend-cluster.h - the backends of a cluster node (e2b serve --cluster).
 *
 * Two backends over one catalog (cluster.h) and the node's own backend:
 *
 *  - routed: what the node answers its clients with. A create is placed
 *    (e2b_cluster_place) and made here or on the chosen node through its
 *    API, signed with the cluster secret; when that node cannot be reached
 *    the next is tried. Calls on one sandbox go to the node that runs it
 *    (a sandbox of this machine is served here without asking the
 *    catalog); lists are gathered from every live node at once; templates
 *    are listed, read and deleted on every node that has them. The edge's
 *    `forward` says which node a sandbox's traffic is relayed to.
 *  - here: what the node answers signed calls of the other nodes with: its
 *    own sandboxes only, never routed again. Its create first fetches the
 *    template's build from the node the placer named when this machine
 *    lacks it (template-transfer.h), then records the sandbox in the
 *    catalog; its kill forgets it.
 *
 * Both borrow `cluster` and `local` (which must outlive them); free the
 * routed one last.
 */
#ifndef E2B_BACKEND_CLUSTER_H
#define E2B_BACKEND_CLUSTER_H

#include "backend.h"
#include "cluster.h"

int e2b_backend_cluster_new(struct e2b_cluster *cluster, struct e2b_backend *local,
                            struct e2b_backend **ret_routed, struct e2b_backend **ret_here,
                            struct e2b_error **err);

/* The path a node serves a template's build at, for e2b_template_export. */
#define E2B_CLUSTER_TEMPLATE_PATH "/_cluster/templates/"

#endif
