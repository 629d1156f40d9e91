/* backend-cluster.c - see backend-cluster.h */
#include "backend-cluster.h"
#include "fsutil.h"
#include "http.h"
#include "sandbox-state.h"
#include "template-store.h"
#include "template-transfer.h"

#include <fcntl.h>
#include <pthread.h>

#define TEMPLATE_FETCH_TIMEOUT_MS (30 * 60 * 1000)

struct cl {
    struct e2b_cluster *cat;
    struct e2b_backend *local;   /* this node's own (spawning) backend */
    struct e2b_backend *here;    /* the here backend, freed with the routed one */
    pthread_mutex_t import_lock; /* one template import at a time */
};

#define CL(b)    ((struct cl *)(b)->impl)
#define LOCAL(b) (CL(b)->local)

static void sign(void *ud, const char *method, const char *target, const void *body, size_t len,
                 char *h[2])
{
    e2b_cluster_sign(ud, method, target, body, len, h);
}

static struct e2b_backend *peer(struct cl *x, const char *address)
{
    struct e2b_backend *r = NULL;
    _cleanup_free_ char *url = xasprintf("http://%s", address);
    e2b_backend_remote_new_signed(url, sign, x->cat, &r, NULL);
    return r;
}

/* Does this machine run (or keep paused) sandbox id? */
static bool local_has(const char *id)
{
    if (!e2b_sandbox_id_valid(id))
        return false;
    _cleanup_free_ char *dir = e2b_sandbox_dir(id);
    if (access(dir, F_OK) == 0)
        return true;
    _cleanup_free_ char *saved = e2b_saved_sandboxes_dir();
    _cleanup_free_ char *sdir = e2b_path_join(saved, id);
    return access(sdir, F_OK) == 0;
}

/* The backend sandbox id is served by: *ret NULL here (the local one), or
 * the owner's (caller frees). */
static int route(struct cl *x, const char *id, struct e2b_backend **ret, struct e2b_error **err)
{
    *ret = NULL;
    if (local_has(id))
        return 0;
    _cleanup_free_ char *addr = NULL;
    if (e2b_cluster_owner(x->cat, id, &addr, err) < 0)
        return -1;
    if (!addr) /* the catalog says here, this machine says no: it ended */
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found", id);
    *ret = peer(x, addr);
    return 0;
}

#define ROUTED(op, ...)                                   \
    do {                                                  \
        struct e2b_backend *r_ = NULL;                    \
        if (route(CL(b), id, &r_, err) < 0)               \
            return -1;                                    \
        struct e2b_backend *t_ = r_ ? r_ : CL(b)->here;   \
        int rc_ = t_->ops->sandboxes.op(t_, __VA_ARGS__); \
        e2b_backend_free(r_);                             \
        return rc_;                                       \
    } while (0)

/* ---- routed: sandboxes ------------------------------------------------------------- */

static int c_create(struct e2b_backend *b, const struct e2b_sandbox_spec *spec, json_t **ret,
                    struct e2b_error **err)
{
    struct cl *x = CL(b);
    _cleanup_strv_ char **tried = NULL;
    for (;;) {
        struct e2b_cluster_pick p;
        if (e2b_cluster_place(x->cat, spec->template ? spec->template : "base", tried, &p, err) <
            0) {
            if (tried)
                e2b_error_wrap(err, "cannot create the sandbox (nodes not answering: %zu)",
                               e2b_strv_len(tried));
            return -1;
        }
        struct e2b_sandbox_spec s = *spec;
        _cleanup_free_ char *ct = NULL;
        if (p.build_id) {
            ct = xasprintf("%s %s %s", p.template_id, p.build_id, p.source ? p.source : "-");
            s.cluster_template = ct;
        }
        struct e2b_backend *target = p.address ? peer(x, p.address) : x->here;
        _cleanup_error_ struct e2b_error *e = NULL;
        int r = target->ops->sandboxes.create(target, &s, ret, &e);
        if (p.address)
            e2b_backend_free(target);
        e2b_cluster_unreserve(x->cat, &p);
        if (r == 0 || !p.address || !e || e->code != E2B_ERR_NETWORK) {
            e2b_cluster_pick_release(&p);
            if (r < 0 && err && !*err)
                *err = TAKE_PTR(e);
            return r;
        }
        /* that node did not answer: the next one (it may be dead, its lease not run out yet) */
        tried = e2b_strv_push(tried, p.node_id);
        e2b_cluster_pick_release(&p);
    }
}

struct gather {
    struct e2b_backend *b;
    const struct e2b_sandbox_filter *f;
    json_t *list;
    pthread_t t;
};

/* One node's sandboxes, every page. */
static void *gather_main(void *ud)
{
    struct gather *g = ud;
    struct e2b_sandbox_filter f = *g->f;
    char *next = NULL;
    g->list = json_array();
    for (int pages = 0; pages < 10000; pages++) {
        json_t *part = NULL;
        f.next_token = next;
        int r = g->b->ops->sandboxes.list(g->b, &f, &part, &next, NULL);
        free((char *)f.next_token);
        f.next_token = NULL;
        if (r < 0)
            break;
        json_array_extend(g->list, part);
        json_decref(part);
        if (!next)
            break;
    }
    return NULL;
}

static int c_list(struct e2b_backend *b, const struct e2b_sandbox_filter *f, json_t **ret,
                  char **ret_next, struct e2b_error **err)
{
    struct cl *x = CL(b);
    *ret_next = NULL;
    _cleanup_json_ json_t *nodes = e2b_cluster_nodes(x->cat);
    size_t n = json_array_size(nodes), k = 0;
    struct gather *g = xcalloc(n + 1, sizeof(*g));
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node) {
        if (json_is_true(json_object_get(node, "self")) ||
            !STREQ(e2b_json_str(node, "status"), "ready"))
            continue;
        g[k].b = peer(x, e2b_json_str(node, "address"));
        g[k].f = f;
        if (g[k].b && pthread_create(&g[k].t, NULL, gather_main, &g[k]) == 0)
            k++;
        else
            e2b_backend_free(g[k].b);
    }
    struct e2b_sandbox_filter mine = *f;
    mine.limit = 0;
    mine.next_token = NULL;
    char *next = NULL;
    int r = x->here->ops->sandboxes.list(x->here, &mine, ret, &next, err);
    free(next);
    for (size_t j = 0; j < k; j++) {
        pthread_join(g[j].t, NULL);
        if (r == 0)
            json_array_extend(*ret, g[j].list);
        json_decref(g[j].list);
        e2b_backend_free(g[j].b);
    }
    free(g);
    return r;
}

static int c_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    ROUTED(get, id, ret, err);
}

static int c_kill(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    ROUTED(kill, id, err);
}

static int c_set_timeout(struct e2b_backend *b, const char *id, int t, struct e2b_error **err)
{
    ROUTED(set_timeout, id, t, err);
}

static int c_pause(struct e2b_backend *b, const char *id, bool to_disk, struct e2b_error **err)
{
    ROUTED(pause, id, to_disk, err);
}

static int c_connect(struct e2b_backend *b, const char *id, int t, json_t **ret, bool *resumed,
                     struct e2b_error **err)
{
    ROUTED(connect, id, t, ret, resumed, err);
}

static int c_metrics(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    ROUTED(metrics, id, ret, err);
}

static int c_update_network(struct e2b_backend *b, const char *id, const json_t *network,
                            struct e2b_error **err)
{
    ROUTED(update_network, id, network, err);
}

static int c_logs(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    ROUTED(logs, id, ret, err);
}

/* Warm sandboxes and snapshots are not a cluster's yet: a snapshot's files
 * are one node's, and the catalog records only sandboxes a placement made. */
static int not_in_cluster(const char *what, struct e2b_error **err)
{
    return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "%s: not supported by a cluster's nodes yet", what);
}

static int c_adopt(struct e2b_backend *b, const char *id, const struct e2b_sandbox_spec *spec,
                   json_t **ret, struct e2b_error **err)
{
    return not_in_cluster("warm sandboxes", err);
}

static int c_snapshot_create(struct e2b_backend *b, const char *id, const char *name, json_t **ret,
                             struct e2b_error **err)
{
    return not_in_cluster("snapshots", err);
}

static int c_snapshot_list(struct e2b_backend *b, const struct e2b_snapshot_filter *f, json_t **ret,
                           char **next, struct e2b_error **err)
{
    return not_in_cluster("snapshots", err);
}

/* not a snapshot here: the template of that ID is (the caller tries it next) */
static int c_snapshot_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return e2b_error_set(err, E2B_ERR_NOT_FOUND, "snapshot '%s' not found", id);
}

static int c_snapshot_fork(struct e2b_backend *b, const char *id, int count, int timeout_s,
                           json_t **ret, struct e2b_error **err)
{
    return not_in_cluster("fork", err);
}

/* ---- routed: the edge ------------------------------------------------------------- */

static int c_envd_endpoint(struct e2b_backend *b, const char *id, struct e2b_envd_endpoint *ep,
                           struct e2b_error **err)
{
    struct e2b_backend *r = NULL;
    if (route(CL(b), id, &r, err) < 0)
        return -1;
    struct e2b_backend *t = r ? r : LOCAL(b);
    int rc = t->ops->edge.envd_endpoint(t, id, ep, err);
    e2b_backend_free(r);
    return rc;
}

static int c_port_connect(struct e2b_backend *b, const char *id, int port, int *fd,
                          struct e2b_error **err)
{
    if (!local_has(id))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' is not on this node", id);
    return LOCAL(b)->ops->edge.port_connect(LOCAL(b), id, port, fd, err);
}

static int c_forward(struct e2b_backend *b, const char *id, char **ret_base, struct e2b_error **err)
{
    *ret_base = NULL;
    if (local_has(id))
        return 0;
    _cleanup_free_ char *addr = NULL;
    if (e2b_cluster_owner(CL(b)->cat, id, &addr, err) < 0)
        return -1;
    if (addr)
        *ret_base = xasprintf("http://%s", addr);
    return 0;
}

/* ---- routed: templates ----------------------------------------------------------- */

/* The live nodes but this one, as signed backends (NULL-ended; caller frees each). */
static struct e2b_backend **peers(struct cl *x)
{
    _cleanup_json_ json_t *nodes = e2b_cluster_nodes(x->cat);
    struct e2b_backend **v = xcalloc(json_array_size(nodes) + 1, sizeof(*v));
    size_t i, k = 0;
    json_t *n;
    json_array_foreach(nodes, i, n)
        if (!json_is_true(json_object_get(n, "self")) &&
            STREQ(e2b_json_str(n, "status"), "ready") &&
            (v[k] = peer(x, e2b_json_str(n, "address"))))
            k++;
    return v;
}

static void peers_free(struct e2b_backend **v)
{
    for (struct e2b_backend **p = v; *p; p++)
        e2b_backend_free(*p);
    free(v);
}

static int c_template_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    struct cl *x = CL(b);
    if (x->local->ops->templates.list(x->local, ret, err) < 0)
        return -1;
    _cleanup_json_ json_t *seen = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(*ret, i, t)
        if (e2b_json_str(t, "templateID"))
            json_object_set_new(seen, e2b_json_str(t, "templateID"), json_true());
    struct e2b_backend **v = peers(x);
    for (struct e2b_backend **p = v; *p; p++) {
        json_t *theirs = NULL;
        if ((*p)->ops->templates.list(*p, &theirs, NULL) < 0)
            continue;
        json_array_foreach(theirs, i, t) {
            const char *id = e2b_json_str(t, "templateID");
            if (id && !json_object_get(seen, id)) {
                json_object_set_new(seen, id, json_true());
                json_array_append(*ret, t);
            }
        }
        json_decref(theirs);
    }
    peers_free(v);
    return 0;
}

static int c_template_get(struct e2b_backend *b, const char *name, json_t **ret,
                          struct e2b_error **err)
{
    struct cl *x = CL(b);
    _cleanup_error_ struct e2b_error *mine = NULL;
    if (x->local->ops->templates.get(x->local, name, ret, &mine) == 0)
        return 0;
    if (mine->code != E2B_ERR_NOT_FOUND) {
        if (err)
            *err = TAKE_PTR(mine);
        return -1;
    }
    struct e2b_backend **v = peers(x);
    int r = -1;
    for (struct e2b_backend **p = v; *p && r < 0; p++)
        r = (*p)->ops->templates.get(*p, name, ret, NULL);
    peers_free(v);
    if (r < 0 && err && !*err)
        *err = TAKE_PTR(mine);
    return r;
}

static int c_template_delete(struct e2b_backend *b, const char *name, struct e2b_error **err)
{
    struct cl *x = CL(b);
    _cleanup_error_ struct e2b_error *mine = NULL;
    int deleted = x->local->ops->templates.delete(x->local, name, &mine) == 0;
    if (!deleted && mine->code != E2B_ERR_NOT_FOUND) {
        if (err)
            *err = TAKE_PTR(mine);
        return -1;
    }
    struct e2b_backend **v = peers(x);
    for (struct e2b_backend **p = v; *p; p++)
        deleted += (*p)->ops->templates.delete(*p, name, NULL) == 0;
    peers_free(v);
    if (!deleted && err && !*err)
        *err = TAKE_PTR(mine);
    return deleted ? 0 : -1;
}

static void c_free(struct e2b_backend *b)
{
    struct cl *x = CL(b);
    free(x->here);
    pthread_mutex_destroy(&x->import_lock);
    free(x);
    free(b);
}

/* ---- volumes and secrets: each node's own -------------------------------------------- */

/* A volume lives on the node that made it, a secret in the store of the
 * node that took it: both tables pass these to this node's backend. */
static int n_volume_create(struct e2b_backend *b, const char *name, long long quota_mb,
                           json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.create(LOCAL(b), name, quota_mb, ret, err);
}

static int n_volume_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.list(LOCAL(b), ret, err);
}

static int n_volume_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.get(LOCAL(b), id, ret, err);
}

static int n_volume_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.delete(LOCAL(b), id, err);
}

static int n_volume_ls(struct e2b_backend *b, const char *volume, const char *path, int depth,
                       json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.ls(LOCAL(b), volume, path, depth, ret, err);
}

static int n_volume_read(struct e2b_backend *b, const char *volume, const char *path, int out_fd,
                         struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.read(LOCAL(b), volume, path, out_fd, err);
}

static int n_volume_write(struct e2b_backend *b, const char *volume, const char *path, int in_fd,
                          json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->volumes.write(LOCAL(b), volume, path, in_fd, ret, err);
}

static int n_volume_open(struct e2b_backend *b, const char *id, struct e2b_volume *ret,
                         struct e2b_error **err)
{
    if (!LOCAL(b)->ops->volumes.open)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED, "volumes are not on this machine");
    return LOCAL(b)->ops->volumes.open(LOCAL(b), id, ret, err);
}

static int n_secret_create(struct e2b_backend *b, const char *name, const char *value,
                           const json_t *meta, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->secrets.create(LOCAL(b), name, value, meta, ret, err);
}

static int n_secret_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->secrets.list(LOCAL(b), ret, err);
}

static int n_secret_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->secrets.get(LOCAL(b), id, ret, err);
}

static int n_secret_update(struct e2b_backend *b, const char *id, const char *value,
                           const json_t *meta, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->secrets.update(LOCAL(b), id, value, meta, ret, err);
}

static int n_secret_delete(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    return LOCAL(b)->ops->secrets.delete(LOCAL(b), id, err);
}

static const struct e2b_backend_ops routed_ops = {
    .name = "cluster",
    .sandboxes = E2B_SANDBOX_OPS(c_),
    .edge = { .envd_endpoint = c_envd_endpoint,
              .port_connect = c_port_connect,
              .forward = c_forward },
    .templates = E2B_TEMPLATE_OPS(c_template_),
    .snapshots = E2B_SNAPSHOT_OPS(c_snapshot_),
    .volumes = E2B_VOLUME_OPS(n_volume_, n_volume_open),
    .secrets = E2B_SECRET_OPS(n_secret_),
    .free = c_free,
};

/* ---- here: this node's sandboxes, for the other nodes ----------------------------- */

static int save_chunk(const void *data, size_t len, void *ud)
{
    return e2b_write_all(*(int *)ud, data, len);
}

/* Have build `bid` of template `tid` in this machine's store, fetched from
 * the node at `from` when it is not. */
static int ensure_template(struct cl *x, const char *tid, const char *bid, const char *from,
                           struct e2b_error **err)
{
    struct e2b_store store;
    if (e2b_store_open(&store, err) < 0)
        return -1;
    _cleanup_json_ json_t *meta = NULL;
    bool have = e2b_store_find(&store, tid, &meta, NULL, NULL) == 0 &&
                e2b_json_str(meta, "buildID") && STREQ(e2b_json_str(meta, "buildID"), bid);
    _cleanup_free_ char *tmpdir = e2b_path_join(store.root, ".staging");
    e2b_store_close(&store);
    if (have)
        return 0;
    if (STREQ(from, "-"))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "template '%s' (build %s) is on no live node",
                             tid, bid);
    pthread_mutex_lock(&x->import_lock);
    int r = -1;
    _cleanup_free_ char *path = xasprintf("%s/fetch-%s.%ld.tar", tmpdir, bid, (long)getpid());
    _cleanup_close_ int fd = -1;
    if (e2b_mkdir_p(tmpdir, 0755, err) == 0 &&
        (fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        e2b_error_sys(err, errno, "cannot make '%s'", path);
    if (fd >= 0) {
        _cleanup_free_ char *base = xasprintf("http://%s", from);
        _cleanup_free_ char *target = xasprintf(E2B_CLUSTER_TEMPLATE_PATH "%s/%s", tid, bid);
        char *h[2];
        e2b_cluster_sign(x->cat, "GET", target, NULL, 0, h);
        const char *headers[] = { h[0], h[1], NULL };
        struct e2b_http_req req = { .method = "GET",
                                    .base = base,
                                    .path = target,
                                    .headers = headers,
                                    .on_data = save_chunk,
                                    .ud = &fd,
                                    .timeout_ms = TEMPLATE_FETCH_TIMEOUT_MS,
                                    .retries = 2 };
        struct e2b_http_resp resp;
        r = e2b_http_request(&req, &resp, err);
        e2b_http_resp_release(&resp);
        free(h[0]);
        free(h[1]);
        if (r < 0)
            e2b_error_wrap(err, "cannot fetch template '%s' from node %s", tid, from);
        /* another create may have brought it meanwhile: the import sees that */
        if (r == 0)
            r = e2b_template_import(path, err);
    }
    unlink(path);
    pthread_mutex_unlock(&x->import_lock);
    return r;
}

/* E2B's clientID names the node a sandbox runs on (its orchestrator node). */
static json_t *stamp(struct cl *x, json_t *sbx)
{
    if (json_is_object(sbx))
        json_object_set_new(sbx, "clientID", json_string(e2b_cluster_node_id(x->cat)));
    return sbx;
}

static int h_create(struct e2b_backend *b, const struct e2b_sandbox_spec *spec, json_t **ret,
                    struct e2b_error **err)
{
    struct cl *x = CL(b);
    if (spec->cluster_template) {
        char tid[80], bid[80], from[300];
        if (sscanf(spec->cluster_template, "%79s %79s %299s", tid, bid, from) != 3)
            return e2b_error_set(err, E2B_ERR_INVALID,
                                 "clusterTemplate '%s' is not '<template> <build> <node>'",
                                 spec->cluster_template);
        if (ensure_template(x, tid, bid, from, err) < 0)
            return -1;
    }
    if (x->local->ops->sandboxes.create(x->local, spec, ret, err) < 0)
        return -1;
    const char *id = e2b_json_str(*ret, "sandboxID");
    _cleanup_error_ struct e2b_error *rerr = NULL;
    if (id &&
        e2b_cluster_record(x->cat, id, e2b_json_str(*ret, "templateID"),
                           (int)e2b_json_int(*ret, "cpuCount", 0),
                           (long)e2b_json_int(*ret, "memoryMB", 0), &rerr) < 0 &&
        rerr->code == E2B_ERR_EXISTS) {
        /* an ID the cluster knows (a lost sandbox's): never reused */
        x->local->ops->sandboxes.kill(x->local, id, NULL);
        json_decref(*ret);
        *ret = NULL;
        if (err)
            *err = TAKE_PTR(rerr);
        return -1;
    }
    stamp(x, *ret);
    return 0; /* not recorded (the catalog unreachable): the next reconcile records it */
}

static int h_list(struct e2b_backend *b, const struct e2b_sandbox_filter *f, json_t **ret,
                  char **next, struct e2b_error **err)
{
    if (LOCAL(b)->ops->sandboxes.list(LOCAL(b), f, ret, next, err) < 0)
        return -1;
    size_t i;
    json_t *s;
    json_array_foreach(*ret, i, s)
        stamp(CL(b), s);
    return 0;
}

static int h_get(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    if (LOCAL(b)->ops->sandboxes.get(LOCAL(b), id, ret, err) < 0)
        return -1;
    stamp(CL(b), *ret);
    return 0;
}

static int h_kill(struct e2b_backend *b, const char *id, struct e2b_error **err)
{
    if (LOCAL(b)->ops->sandboxes.kill(LOCAL(b), id, err) < 0)
        return -1;
    e2b_cluster_forget(CL(b)->cat, id);
    return 0;
}

static int h_set_timeout(struct e2b_backend *b, const char *id, int t, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.set_timeout(LOCAL(b), id, t, err);
}

static int h_pause(struct e2b_backend *b, const char *id, bool to_disk, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.pause(LOCAL(b), id, to_disk, err);
}

static int h_connect(struct e2b_backend *b, const char *id, int t, json_t **ret, bool *resumed,
                     struct e2b_error **err)
{
    if (LOCAL(b)->ops->sandboxes.connect(LOCAL(b), id, t, ret, resumed, err) < 0)
        return -1;
    stamp(CL(b), *ret);
    return 0;
}

static int h_metrics(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.metrics(LOCAL(b), id, ret, err);
}

static int h_update_network(struct e2b_backend *b, const char *id, const json_t *network,
                            struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.update_network(LOCAL(b), id, network, err);
}

static int h_logs(struct e2b_backend *b, const char *id, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->sandboxes.logs(LOCAL(b), id, ret, err);
}

static int h_envd_endpoint(struct e2b_backend *b, const char *id, struct e2b_envd_endpoint *ep,
                           struct e2b_error **err)
{
    return LOCAL(b)->ops->edge.envd_endpoint(LOCAL(b), id, ep, err);
}

static int h_port_connect(struct e2b_backend *b, const char *id, int port, int *fd,
                          struct e2b_error **err)
{
    return LOCAL(b)->ops->edge.port_connect(LOCAL(b), id, port, fd, err);
}

static int h_template_list(struct e2b_backend *b, json_t **ret, struct e2b_error **err)
{
    return LOCAL(b)->ops->templates.list(LOCAL(b), ret, err);
}

static int h_template_get(struct e2b_backend *b, const char *name, json_t **ret,
                          struct e2b_error **err)
{
    return LOCAL(b)->ops->templates.get(LOCAL(b), name, ret, err);
}

static int h_template_delete(struct e2b_backend *b, const char *name, struct e2b_error **err)
{
    return LOCAL(b)->ops->templates.delete(LOCAL(b), name, err);
}

static void h_free(struct e2b_backend *b) { (void)b; /* freed with the routed one */ }

#define h_adopt c_adopt
#define h_snapshot_create c_snapshot_create
#define h_snapshot_list c_snapshot_list
#define h_snapshot_delete c_snapshot_delete
#define h_snapshot_fork c_snapshot_fork

static const struct e2b_backend_ops here_ops = {
    .name = "local",
    .sandboxes = E2B_SANDBOX_OPS(h_),
    .edge = { .envd_endpoint = h_envd_endpoint, .port_connect = h_port_connect },
    .templates = E2B_TEMPLATE_OPS(h_template_),
    .snapshots = E2B_SNAPSHOT_OPS(h_snapshot_),
    .volumes = E2B_VOLUME_OPS(n_volume_, n_volume_open),
    .secrets = E2B_SECRET_OPS(n_secret_),
    .free = h_free,
};

int e2b_backend_cluster_new(struct e2b_cluster *cluster, struct e2b_backend *local,
                            struct e2b_backend **ret_routed, struct e2b_backend **ret_here,
                            struct e2b_error **err)
{
    struct cl *x = xcalloc(1, sizeof(*x));
    x->cat = cluster;
    x->local = local;
    pthread_mutex_init(&x->import_lock, NULL);
    struct e2b_backend *routed = xcalloc(1, sizeof(*routed)), *here = xcalloc(1, sizeof(*here));
    routed->ops = &routed_ops;
    routed->impl = x;
    here->ops = &here_ops;
    here->impl = x;
    x->here = here;
    *ret_routed = routed;
    *ret_here = here;
    return 0;
}
