/* cluster.h - the catalog that `e2b serve --cluster` nodes share in Redis.
 *
 * No cluster manager of our own: each node registers itself (address,
 * capacity, load), holds a lease that it renews, records the sandboxes it
 * runs and publishes the templates it has. Any node can then tell who runs
 * a sandbox, which nodes are alive, and where to place a new sandbox. The
 * keys (all under "e2b:"):
 *
 *   e2b:cluster            hash  salt, check: HMAC of the salt with the cluster
 *                                secret; a node whose secret gives another check
 *                                cannot join
 *   e2b:nodes              set   node IDs
 *   e2b:node:<n>           hash  address, epoch, state (ready|dead), startedAt,
 *                                renewedAt, deadAt, cpus, memoryMB, sandboxes,
 *                                cpuUsed, memUsedMB
 *   e2b:lease:<n>          str   the node's epoch, expiring after the lease time;
 *                                the node is alive while it exists
 *   e2b:node:<n>:sbx       set   the sandboxes it runs
 *   e2b:node:<n>:tpl       hash  templateID -> {b: buildID, u: updatedAt,
 *                                n: [names], c: cpuCount, m: memoryMB}
 *   e2b:node:<n>:resv      hash  placements on their way to it: "cpu mem expiresMs"
 *   e2b:sbx:<id>           hash  node, epoch, template, cpus, memoryMB
 *
 * An epoch is a random value a node takes when it joins afresh: a sandbox
 * is reachable while its record's epoch is its node's live lease. A node
 * that stops renewing loses its lease; from then on its sandboxes are
 * reported lost (lookups fail with "lost", lists leave them out), another
 * node marks it dead, and its records expire a day later. It never gets
 * them back: when it renews too late or restarts after its lease ran out,
 * it ends those of its sandboxes still running (they were reported lost),
 * removes their records and joins with a new epoch. A restart within the
 * lease keeps the epoch, and the sandboxes stay as they were.
 *
 * Two threads per node: one renews the lease every third of the lease
 * time; the other, as often, writes the node's load, reconciles its
 * sandbox records and templates with what this machine has, reads the
 * other nodes, and marks dead the ones whose lease is gone.
 *
 * Between nodes, API calls are signed with the cluster secret
 * (e2b_cluster_sign/verify): HMAC-SHA256 over the node, the time, the
 * method, the target and the body's SHA-256, good for a minute.
 */
#ifndef E2B_CLUSTER_H
#define E2B_CLUSTER_H

#include "json.h"

struct e2b_cluster_opts {
    const char *url;     /* redis://[[user]:password@]host[:port][/db] */
    const char *node_id; /* NULL: the address */
    const char *address; /* HOST:PORT the other nodes reach this node's e2b serve at */
    const char *secret;  /* the cluster secret (at least 16 bytes) */
    size_t secret_len;
    int lease_ms;   /* 0: 10000 */
    int cpus;       /* 0: this machine's */
    long memory_mb; /* 0: this machine's */
    /* What the node says as it goes (joined, a node marked dead, its own
     * lease lost, a peer not answering): one line each, no newline. */
    void (*on_event)(const char *msg, void *ud);
    void *ud;
    volatile int *stop; /* set to 1 when another process took the node's ID */
};

struct e2b_cluster;

/* Check the secret, register, clear what a previous run of this node left
 * (ending its sandboxes when its lease had run out), start the threads. */
int e2b_cluster_join(const struct e2b_cluster_opts *o, struct e2b_cluster **ret,
                     struct e2b_error **err);
/* Stop renewing (the lease runs out by itself: a restart within it keeps
 * the sandboxes). */
void e2b_cluster_leave(struct e2b_cluster *c);

const char *e2b_cluster_node_id(const struct e2b_cluster *c);

/* The nodes as last read: [{nodeID, address, status "ready"|"dead", self,
 * cpuCount, memoryMB, sandboxCount, allocatedCPU, allocatedMemoryMB,
 * startedAt, templates {...}}]. */
json_t *e2b_cluster_nodes(struct e2b_cluster *c);

/* Who runs sandbox `id`: 0 and *ret_address NULL when the catalog says this
 * node (a node restarted within its lease), else the owner's address
 * (caller frees). E2B_ERR_NOT_FOUND when the catalog has no such sandbox,
 * or it was lost (its node's lease ran out: the message says so). */
int e2b_cluster_owner(struct e2b_cluster *c, const char *id, char **ret_address,
                      struct e2b_error **err);
/* Record a sandbox this node runs (after its create); EXISTS when another
 * node holds the ID (never reused). Forget it after it ended here. */
int e2b_cluster_record(struct e2b_cluster *c, const char *id, const char *template_id, int cpus,
                       long memory_mb, struct e2b_error **err);
void e2b_cluster_forget(struct e2b_cluster *c, const char *id);

/* Where a create of `template` goes: the live node with the most free
 * memory and CPU after what runs and what is being placed there, a little
 * ahead where it already has the template; never one without the memory
 * the template asks for, nor one in `exclude` (node IDs). The placement
 * is reserved on that node until e2b_cluster_unreserve. */
struct e2b_cluster_pick {
    char *node_id;
    char *address;                /* NULL: this node */
    char *template_id, *build_id; /* the newest build of the template in the cluster */
    char *source;                 /* a node's address that has that build; NULL: the
                               * chosen node has it, or it is "host" */
    char *reservation;
    int cpus;
    long memory_mb;
};
int e2b_cluster_place(struct e2b_cluster *c, const char *template, char *const *exclude,
                      struct e2b_cluster_pick *ret, struct e2b_error **err);
void e2b_cluster_unreserve(struct e2b_cluster *c, struct e2b_cluster_pick *p);
void e2b_cluster_pick_release(struct e2b_cluster_pick *p);

/* The headers that sign a call to another node: "E2b-Cluster-Node: ..."
 * and "E2b-Cluster-Auth: ..." into h[0], h[1] (caller frees both). */
void e2b_cluster_sign(struct e2b_cluster *c, const char *method, const char *target,
                      const void *body, size_t len, char *h[2]);
/* Check such headers (their values; NULL when absent): 0, or
 * E2B_ERR_AUTH saying what is wrong (missing, stale, bad signature). */
int e2b_cluster_verify(struct e2b_cluster *c, const char *node, const char *auth,
                       const char *method, const char *target, const void *body, size_t len,
                       struct e2b_error **err);

#endif
