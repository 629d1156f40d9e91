/* serve-opts.h - how `e2b serve` runs: what every part of the server (the
 * API, the router, each connection) reads. A header of its own so those
 * parts need not include serve.h, which includes them. */
#ifndef E2B_SERVE_OPTS_H
#define E2B_SERVE_OPTS_H

#include "backend.h"

struct e2b_cluster;

struct e2b_serve_opts {
    const char *listen;          /* "127.0.0.1:3000" */
    const char *domain;          /* for <port>-<id>.<domain> hosts; NULL: any, 20-char IDs */
    struct e2b_backend *backend; /* where sandboxes live (local) */
    const char *keys_path;       /* serve-keys file */
    bool deny_internet;          /* sandboxes get internet only when asked for it */
    const char *runtime;         /* the runtime of creates whose template names none; NULL: auto */
    const char *kernel;          /* the vm runtime's guest kernel; NULL: found */
    int max_connections;         /* 0: the default (1024) */
    int head_timeout_ms;         /* a request head must arrive within; 0: 30 s */
    int idle_timeout_ms;         /* a kept-alive connection may idle for; 0: 120 s */
    volatile int *stop;          /* set non-zero to stop (signal handler) */
    struct e2b_serve_spawner *spawner; /* set by e2b_serve_run (serve-spawn.h) */
    struct e2b_serve_builds *builds;   /* set by e2b_serve_run (serve-templates.h) */
    const json_t *warm_pools;    /* {template: N}: sandboxes kept ready (serve-warm.h), or NULL */
    struct e2b_serve_warm *warm; /* set by e2b_serve_run */
    int max_builds;              /* template builds at once; 0: 2 */
    long upload_limit_mb;        /* largest template files upload; 0: 1024 MiB */
    /* Cluster (cluster.h): none without a catalog URL. */
    const char *cluster_url;     /* redis://... */
    const char *node_address;    /* HOST:PORT the other nodes reach this one at */
    const char *node_id;         /* NULL: the address */
    const char *cluster_secret;  /* at least 16 bytes */
    size_t cluster_secret_len;
    int lease_ms;                /* 0: 10 s */
    void (*on_event)(const char *msg, void *ud); /* what the cluster says as it goes */
    struct e2b_cluster *cluster; /* set by e2b_serve_run */
    struct e2b_backend *here;    /* set by e2b_serve_run: this node's sandboxes, for signed calls */
    void (*on_ready)(const char *addr, void *ud); /* called once listening */
    void *ud;
};

#endif
