/* cluster.c - see cluster.h */
#include "cluster.h"
#include "envd-crypto.h"
#include "local-sandbox.h"
#include "redis.h"
#include "sandbox-state.h"
#include "template-store.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/random.h>

#define DEFAULT_LEASE_MS  10000
#define FORGET_S          (24 * 3600) /* a dead node's records go after a day */
#define RESERVE_MS        120000      /* a placement not confirmed within: forgotten */
#define SIGN_WINDOW_MS    60000
#define LOCALITY_BONUS    0.1
#define DEFAULT_CPUS      2
#define DEFAULT_MEMORY_MB 512
#define OWNERS_MAX        65536 /* cached owners; all forgotten when there are more */

struct e2b_cluster {
    struct e2b_redis *redis;
    char *node_id, *address;
    char *secret;
    size_t secret_len;
    int lease_ms;
    int cpus;
    long memory_mb;
    void (*on_event)(const char *msg, void *ud);
    void *ud;
    volatile int *stop;

    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t wake;
    char *epoch;
    json_t *view;        /* e2b_cluster_nodes */
    json_t *owners;      /* sandbox ID -> [node, epoch, address]: a sandbox never moves */
    char *published_tpl; /* what e2b:node:<me>:tpl was last set to */
    bool leaving;
    pthread_mutex_t place_lock; /* one placement at a time from this node */
    pthread_t lease_thread, sync_thread;
    bool threads;
};

static void event(struct e2b_cluster *c, const char *fmt, ...) _printf_(2, 3);
static void event(struct e2b_cluster *c, const char *fmt, ...)
{
    if (!c->on_event)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) >= 0) {
        c->on_event(msg, c->ud);
        free(msg);
    }
    va_end(ap);
}

const char *e2b_cluster_node_id(const struct e2b_cluster *c) { return c->node_id; }

static char *key(const char *a, const char *b, const char *c) /* "e2b:" a b c */
{
    return xasprintf("e2b:%s%s%s", a, b ? b : "", c ? c : "");
}

static char *random_hex(size_t bytes)
{
    uint8_t b[32];
    if (bytes > sizeof(b))
        bytes = sizeof(b);
    if (getrandom(b, bytes, 0) != (ssize_t)bytes)
        for (size_t i = 0; i < bytes;
             i++) /* never short from the kernel's pool; still, something */
            b[i] = (uint8_t)(e2b_now_ms() >> (i % 8) ^ (uint64_t)i * 131);
    char *out = xmalloc(2 * bytes + 1);
    e2b_hex(b, bytes, out);
    return out;
}

static char *hmac_hex(const struct e2b_cluster *c, const char *msg, size_t len)
{
    struct e2b_hmac_sha256 h;
    uint8_t mac[E2B_SHA256_LEN];
    e2b_hmac_sha256_init(&h, c->secret, c->secret_len);
    e2b_hmac_sha256_update(&h, msg, len);
    e2b_hmac_sha256_final(&h, mac);
    char *out = xmalloc(2 * E2B_SHA256_LEN + 1);
    e2b_hex(mac, E2B_SHA256_LEN, out);
    return out;
}

/* ---- Lua scripts: each one round trip, atomic ------------------------------------ */

/* KEYS: lease; ARGV: epoch, ms. 1 renewed, 0 gone, -1 another epoch holds it. */
static const char RENEW[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "if not v then return 0 end\n"
    "return -1\n";

/* KEYS: e2b:sbx:<id>; ARGV: id. {node, epoch, lease of the node or '', address or '', deadAt or ''} */
static const char OWNER[] =
    "local n = redis.call('HMGET', KEYS[1], 'node', 'epoch')\n"
    "if not n[1] then return false end\n"
    "local l = redis.call('GET', 'e2b:lease:' .. n[1])\n"
    "local a = redis.call('HMGET', 'e2b:node:' .. n[1], 'address', 'deadAt', 'renewedAt')\n"
    "return {n[1], n[2] or '', l or '', a[1] or '', a[2] or '', a[3] or ''}\n";

/* KEYS: e2b:sbx:<id>, e2b:node:<me>:sbx, e2b:node:<me>; ARGV: me, epoch,
 * template, id, cpus, memoryMB. 1, or 0 when another node has it. A new
 * sandbox counts in its node's load at once (placements right after see it). */
static const char RECORD[] =
    "local cur = redis.call('HGET', KEYS[1], 'node')\n"
    "if cur and cur ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'node', ARGV[1], 'epoch', ARGV[2], 'template', ARGV[3],\n"
    "           'cpus', ARGV[5], 'memoryMB', ARGV[6])\n"
    "redis.call('PERSIST', KEYS[1])\n"
    "if redis.call('SADD', KEYS[2], ARGV[4]) == 1 then\n"
    "  redis.call('HINCRBY', KEYS[3], 'sandboxes', 1)\n"
    "  redis.call('HINCRBY', KEYS[3], 'cpuUsed', ARGV[5])\n"
    "  redis.call('HINCRBY', KEYS[3], 'memUsedMB', ARGV[6])\n"
    "end\n"
    "return 1\n";

/* KEYS: e2b:sbx:<id>, e2b:node:<me>:sbx, e2b:node:<me>; ARGV: me, id */
static const char FORGET[] =
    "local r = redis.call('HMGET', KEYS[1], 'node', 'cpus', 'memoryMB')\n"
    "if r[1] == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "if redis.call('SREM', KEYS[2], ARGV[2]) == 1 and r[1] == ARGV[1] then\n"
    "  redis.call('HINCRBY', KEYS[3], 'sandboxes', -1)\n"
    "  redis.call('HINCRBY', KEYS[3], 'cpuUsed', -(tonumber(r[2]) or 0))\n"
    "  redis.call('HINCRBY', KEYS[3], 'memUsedMB', -(tonumber(r[3]) or 0))\n"
    "end\n"
    "return 1\n";

/* KEYS: e2b:node:<n>, its sbx set, tpl hash, resv hash; ARGV: now, seconds.
 * Marks the node dead unless its lease came back; its records expire. */
static const char MARK_DEAD[] =
    "if redis.call('EXISTS', 'e2b:lease:' .. ARGV[3]) == 1 then return 0 end\n"
    "if redis.call('HGET', KEYS[1], 'state') == 'dead' then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'state', 'dead', 'deadAt', ARGV[1])\n"
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
    "  redis.call('EXPIRE', 'e2b:sbx:' .. id, ARGV[2])\n"
    "end\n"
    "for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end\n"
    "return 1\n";

static int eval(struct e2b_cluster *c, const char *script, size_t nkeys, const char *const *keys,
                size_t nargs, const char *const *args, struct e2b_resp **ret,
                struct e2b_error **err)
{
    const char *argv[16];
    char nk[8];
    snprintf(nk, sizeof(nk), "%zu", nkeys);
    size_t argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = script;
    argv[argc++] = nk;
    for (size_t i = 0; i < nkeys && argc < 16; i++)
        argv[argc++] = keys[i];
    for (size_t i = 0; i < nargs && argc < 16; i++)
        argv[argc++] = args[i];
    return e2b_redis_cmdv(c->redis, argc, argv, NULL, ret, err);
}

/* ---- joining -------------------------------------------------------------------- */

static int check_secret(struct e2b_cluster *c, struct e2b_error **err)
{
    _cleanup_free_ char *salt = random_hex(16);
    if (e2b_redis_cmd(c->redis, NULL, err, "HSETNX", "e2b:cluster", "salt", salt, NULL) < 0)
        return -1;
    _cleanup_resp_ struct e2b_resp *s = NULL;
    if (e2b_redis_cmd(c->redis, &s, err, "HGET", "e2b:cluster", "salt", NULL) < 0)
        return -1;
    if (!e2b_resp_str(s))
        return e2b_error_set(err, E2B_ERR_API, "the catalog at %s lost its salt",
                             e2b_redis_where(c->redis));
    _cleanup_free_ char *msg = xasprintf("e2b-cluster-check\n%s", e2b_resp_str(s));
    _cleanup_free_ char *mine = hmac_hex(c, msg, strlen(msg));
    if (e2b_redis_cmd(c->redis, NULL, err, "HSETNX", "e2b:cluster", "check", mine, NULL) < 0)
        return -1;
    _cleanup_resp_ struct e2b_resp *chk = NULL;
    if (e2b_redis_cmd(c->redis, &chk, err, "HGET", "e2b:cluster", "check", NULL) < 0)
        return -1;
    if (!e2b_resp_str(chk) || !e2b_consttime_streq(e2b_resp_str(chk), mine))
        return e2b_error_set(
            err, E2B_ERR_AUTH,
            "cannot join the cluster at %s: the cluster secret differs from the one its "
            "nodes share",
            e2b_redis_where(c->redis));
    return 0;
}

static bool local_running(const char *id)
{
    _cleanup_json_ json_t *st = NULL;
    return e2b_local_get(id, &st, NULL) == 0;
}

/* The records of this node's previous epoch go; its sandboxes still running
 * here end (they were reported lost). Then a new epoch and lease. */
static int join_afresh(struct e2b_cluster *c, struct e2b_error **err)
{
    _cleanup_free_ char *set = key("node:", c->node_id, ":sbx");
    _cleanup_resp_ struct e2b_resp *ids = NULL;
    if (e2b_redis_cmd(c->redis, &ids, err, "SMEMBERS", set, NULL) < 0)
        return -1;
    size_t ended = 0;
    for (size_t i = 0; ids && i < ids->n; i++) {
        const char *id = e2b_resp_str(ids->elems[i]);
        if (!id)
            continue;
        _cleanup_free_ char *k = key("sbx:", id, NULL), *nk = key("node:", c->node_id, NULL);
        const char *keys[] = { k, set, nk }, *args[] = { c->node_id, id };
        eval(c, FORGET, 3, keys, 2, args, NULL, NULL);
        if (e2b_sandbox_id_valid(id) && local_running(id)) {
            _cleanup_error_ struct e2b_error *kerr = NULL;
            if (e2b_local_kill(id, &kerr) == 0)
                ended++;
            else
                event(c, "cannot end sandbox %s, lost with the node's lease: %s", id, kerr->msg);
        }
    }
    if (ended)
        event(c, "ended %zu sandboxes of this node's previous run: they were reported lost", ended);
    _cleanup_free_ char *tpl = key("node:", c->node_id, ":tpl");
    _cleanup_free_ char *resv = key("node:", c->node_id, ":resv");
    if (e2b_redis_cmd(c->redis, NULL, err, "DEL", set, tpl, resv, NULL) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    free(c->epoch);
    c->epoch = random_hex(12);
    free(c->published_tpl);
    c->published_tpl = NULL;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static int register_node(struct e2b_cluster *c, bool fresh, struct e2b_error **err)
{
    _cleanup_free_ char *lease = key("lease:", c->node_id, NULL);
    _cleanup_free_ char *node = key("node:", c->node_id, NULL);
    _cleanup_free_ char *ms = xasprintf("%d", c->lease_ms);
    _cleanup_free_ char *now = xasprintf("%lld", (long long)e2b_wall_ms());
    _cleanup_free_ char *cpus = xasprintf("%d", c->cpus), *mem = xasprintf("%ld", c->memory_mb);
    pthread_mutex_lock(&c->lock);
    _cleanup_free_ char *epoch = xstrdup(c->epoch);
    pthread_mutex_unlock(&c->lock);
    if (e2b_redis_cmd(c->redis, NULL, err, "SET", lease, epoch, "PX", ms, NULL) < 0 ||
        e2b_redis_cmd(c->redis, NULL, err, "HSET", node, "address", c->address, "epoch", epoch,
                      "state", "ready", "renewedAt", now, "cpus", cpus, "memoryMB", mem,
                      NULL) < 0 ||
        (fresh && e2b_redis_cmd(c->redis, NULL, err, "HSET", node, "startedAt", now, "sandboxes",
                                "0", "cpuUsed", "0", "memUsedMB", "0", NULL) < 0) ||
        e2b_redis_cmd(c->redis, NULL, err, "HDEL", node, "deadAt", NULL) < 0 ||
        e2b_redis_cmd(c->redis, NULL, err, "PERSIST", node, NULL) < 0 ||
        e2b_redis_cmd(c->redis, NULL, err, "SADD", "e2b:nodes", c->node_id, NULL) < 0)
        return -1;
    return 0;
}

/* ---- the threads ---------------------------------------------------------------- */

/* Sleep up to ms, or until leave; false when leaving. */
static bool nap(struct e2b_cluster *c, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&c->lock);
    if (!c->leaving)
        pthread_cond_timedwait(&c->wake, &c->lock, &ts);
    bool go_on = !c->leaving;
    pthread_mutex_unlock(&c->lock);
    return go_on;
}

static void *lease_main(void *ud)
{
    struct e2b_cluster *c = ud;
    _cleanup_free_ char *lease = key("lease:", c->node_id, NULL);
    _cleanup_free_ char *node = key("node:", c->node_id, NULL);
    _cleanup_free_ char *ms = xasprintf("%d", c->lease_ms);
    bool failing = false;
    while (nap(c, c->lease_ms / 3)) {
        pthread_mutex_lock(&c->lock);
        _cleanup_free_ char *epoch = xstrdup(c->epoch);
        pthread_mutex_unlock(&c->lock);
        _cleanup_error_ struct e2b_error *err = NULL;
        _cleanup_resp_ struct e2b_resp *r = NULL;
        const char *keys[] = { lease }, *args[] = { epoch, ms };
        if (eval(c, RENEW, 1, keys, 2, args, &r, &err) < 0) {
            if (!failing)
                event(c, "cannot renew the lease: %s", err->msg);
            failing = true;
            continue;
        }
        failing = false;
        if (r->type == E2B_RESP_INT && r->integer == 1) {
            _cleanup_free_ char *now = xasprintf("%lld", (long long)e2b_wall_ms());
            e2b_redis_cmd(c->redis, NULL, NULL, "HSET", node, "renewedAt", now, NULL);
            continue;
        }
        if (r->type == E2B_RESP_INT && r->integer == -1) {
            event(c, "another e2b serve took node ID '%s' in the cluster: stopping", c->node_id);
            if (c->stop)
                *c->stop = 1;
            break;
        }
        /* the lease ran out: the other nodes report our sandboxes lost */
        event(
            c,
            "the lease of node '%s' ran out before it was renewed: its sandboxes were reported lost; "
            "ending them and joining anew",
            c->node_id);
        _cleanup_error_ struct e2b_error *jerr = NULL;
        /* the catalog may have been emptied (a restart of Redis): the secret's check first */
        if (check_secret(c, &jerr) < 0 || join_afresh(c, &jerr) < 0 || register_node(c, true, &jerr) < 0)
            event(c, "cannot join anew: %s", jerr->msg);
    }
    return NULL;
}

static json_t *local_templates(void)
{
    struct e2b_store store;
    json_t *list = NULL, *out = json_object();
    if (e2b_store_open(&store, NULL) < 0)
        return out;
    if (e2b_store_list(&store, &list, NULL) == 0) {
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t) {
            const char *id = e2b_json_str(t, "templateID"), *b = e2b_json_str(t, "buildID");
            if (!id || !b)
                continue;
            json_t *names = json_array();
            json_array_extend(names, json_object_get(t, "aliases"));
            json_object_set_new(
                out, id,
                json_pack("{s:s, s:s?, s:o, s:I, s:I}", "b", b, "u", e2b_json_str(t, "updatedAt"),
                          "n", names, "c", (json_int_t)e2b_json_int(t, "cpuCount", DEFAULT_CPUS),
                          "m", (json_int_t)e2b_json_int(t, "memoryMB", DEFAULT_MEMORY_MB)));
        }
        json_decref(list);
    }
    e2b_store_close(&store);
    return out;
}

/* This node's sandboxes and templates into the catalog, its load too. */
static void reconcile(struct e2b_cluster *c)
{
    _cleanup_free_ char *set = key("node:", c->node_id, ":sbx");
    _cleanup_free_ char *node = key("node:", c->node_id, NULL);
    pthread_mutex_lock(&c->lock);
    _cleanup_free_ char *epoch = xstrdup(c->epoch);
    pthread_mutex_unlock(&c->lock);
    /* the catalog first, then this machine: a create recorded in between is
     * in neither list as missing (never forgotten by mistake) */
    _cleanup_resp_ struct e2b_resp *cat = NULL;
    _cleanup_json_ json_t *local = NULL;
    if (e2b_redis_cmd(c->redis, &cat, NULL, "SMEMBERS", set, NULL) < 0 ||
        e2b_local_list(&local, NULL) < 0)
        return;
    _cleanup_json_ json_t *here = json_object();
    long cpu = 0, mem = 0;
    size_t i;
    json_t *st;
    json_array_foreach(local, i, st) {
        const char *id = e2b_json_str(st, "sandboxID");
        if (!id)
            continue;
        json_object_set_new(here, id, json_true());
        cpu += (long)e2b_json_int(st, "cpuCount", 0);
        mem += (long)e2b_json_int(st, "memoryMB", 0);
    }
    _cleanup_json_ json_t *known = json_object();
    for (size_t k = 0; cat && k < cat->n; k++) {
        const char *id = e2b_resp_str(cat->elems[k]);
        if (!id)
            continue;
        json_object_set_new(known, id, json_true());
        if (!json_object_get(here, id)) { /* ended here (its timeout, a kill from the CLI) */
            _cleanup_free_ char *k2 = key("sbx:", id, NULL);
            const char *keys[] = { k2, set, node }, *args[] = { c->node_id, id };
            eval(c, FORGET, 3, keys, 2, args, NULL, NULL);
        }
    }
    json_array_foreach(local, i, st) {
        const char *id = e2b_json_str(st, "sandboxID");
        if (!id || json_object_get(known, id))
            continue;
        /* started here without the catalog (the CLI), or this run adopted it */
        _cleanup_free_ char *k2 = key("sbx:", id, NULL);
        _cleanup_free_ char *cs = xasprintf("%lld", e2b_json_int(st, "cpuCount", 0));
        _cleanup_free_ char *ms = xasprintf("%lld", e2b_json_int(st, "memoryMB", 0));
        const char *keys[] = { k2, set, node }, *args[] = {
            c->node_id, epoch, e2b_json_str(st, "templateID") ? e2b_json_str(st, "templateID") : "",
            id,         cs,    ms
        };
        eval(c, RECORD, 3, keys, 6, args, NULL, NULL);
    }
    _cleanup_free_ char *n = xasprintf("%zu", json_array_size(local));
    _cleanup_free_ char *cs = xasprintf("%ld", cpu), *ms = xasprintf("%ld", mem);
    e2b_redis_cmd(c->redis, NULL, NULL, "HSET", node, "sandboxes", n, "cpuUsed", cs, "memUsedMB",
                  ms, NULL);
    /* templates: only when they changed */
    _cleanup_json_ json_t *tpl = local_templates();
    _cleanup_free_ char *dump = e2b_json_dump(tpl, JSON_SORT_KEYS | JSON_COMPACT);
    pthread_mutex_lock(&c->lock);
    bool same = c->published_tpl && STREQ(c->published_tpl, dump);
    pthread_mutex_unlock(&c->lock);
    if (!same) {
        _cleanup_free_ char *tk = key("node:", c->node_id, ":tpl");
        bool ok = e2b_redis_cmd(c->redis, NULL, NULL, "DEL", tk, NULL) == 0;
        const char *id;
        json_t *v;
        json_object_foreach(tpl, id, v) {
            _cleanup_free_ char *val = e2b_json_dump(v, JSON_COMPACT);
            ok = ok && e2b_redis_cmd(c->redis, NULL, NULL, "HSET", tk, id, val, NULL) == 0;
        }
        if (ok) {
            pthread_mutex_lock(&c->lock);
            free(c->published_tpl);
            c->published_tpl = TAKE_PTR(dump);
            pthread_mutex_unlock(&c->lock);
        }
    }
    /* reservations past their time: a placer that went away */
    _cleanup_free_ char *rk = key("node:", c->node_id, ":resv");
    _cleanup_resp_ struct e2b_resp *rv = NULL;
    if (e2b_redis_cmd(c->redis, &rv, NULL, "HGETALL", rk, NULL) == 0)
        for (size_t k = 0; rv && k + 1 < rv->n; k += 2) {
            long long cpu_r = 0, mem_r = 0, until = 0;
            const char *v = e2b_resp_str(rv->elems[k + 1]);
            if (v && sscanf(v, "%lld %lld %lld", &cpu_r, &mem_r, &until) == 3 &&
                until < e2b_wall_ms())
                e2b_redis_cmd(c->redis, NULL, NULL, "HDEL", rk, e2b_resp_str(rv->elems[k]), NULL);
        }
}

static const char *field(const struct e2b_resp *h, const char *name) /* of an HGETALL reply */
{
    for (size_t i = 0; h && h->type == E2B_RESP_ARRAY && i + 1 < h->n; i += 2)
        if (e2b_resp_str(h->elems[i]) && STREQ(e2b_resp_str(h->elems[i]), name))
            return e2b_resp_str(h->elems[i + 1]);
    return NULL;
}

static long long num(const char *s) { return s ? strtoll(s, NULL, 10) : 0; }

/* Read every node; mark dead the ones whose lease is gone. */
static void refresh(struct e2b_cluster *c)
{
    _cleanup_resp_ struct e2b_resp *ids = NULL;
    if (e2b_redis_cmd(c->redis, &ids, NULL, "SMEMBERS", "e2b:nodes", NULL) < 0)
        return;
    json_t *view = json_array();
    for (size_t i = 0; ids && i < ids->n; i++) {
        const char *id = e2b_resp_str(ids->elems[i]);
        if (!id)
            continue;
        _cleanup_free_ char *nk = key("node:", id, NULL), *lk = key("lease:", id, NULL);
        _cleanup_free_ char *tk = key("node:", id, ":tpl");
        _cleanup_resp_ struct e2b_resp *h = NULL, *l = NULL, *t = NULL;
        if (e2b_redis_cmd(c->redis, &h, NULL, "HGETALL", nk, NULL) < 0 ||
            e2b_redis_cmd(c->redis, &l, NULL, "GET", lk, NULL) < 0 ||
            e2b_redis_cmd(c->redis, &t, NULL, "HGETALL", tk, NULL) < 0)
            continue;
        if (!h->n) { /* its records expired: forget the node */
            e2b_redis_cmd(c->redis, NULL, NULL, "SREM", "e2b:nodes", id, NULL);
            continue;
        }
        const char *epoch = field(h, "epoch");
        bool alive = e2b_resp_str(l) && epoch && STREQ(e2b_resp_str(l), epoch);
        const char *state = field(h, "state");
        if (!alive && !(state && STREQ(state, "dead"))) {
            _cleanup_free_ char *sk = key("node:", id, ":sbx"), *rk = key("node:", id, ":resv");
            _cleanup_free_ char *now = xasprintf("%lld", (long long)e2b_wall_ms()),
                                *ttl = xasprintf("%d", FORGET_S);
            const char *keys[] = { nk, sk, tk, rk }, *args[] = { now, ttl, id };
            _cleanup_resp_ struct e2b_resp *m = NULL;
            if (eval(c, MARK_DEAD, 4, keys, 3, args, &m, NULL) == 0 && m->type == E2B_RESP_INT &&
                m->integer == 1)
                event(
                    c,
                    "node '%s' (%s) stopped renewing its lease: marked dead, its sandboxes are lost",
                    id, field(h, "address") ? field(h, "address") : "?");
        }
        json_t *tpl = json_object();
        for (size_t k = 0; t && k + 1 < t->n; k += 2) {
            json_t *v = e2b_resp_str(t->elems[k + 1])
                            ? json_loads(e2b_resp_str(t->elems[k + 1]), 0, NULL)
                            : NULL;
            if (e2b_resp_str(t->elems[k]) && json_is_object(v))
                json_object_set_new(tpl, e2b_resp_str(t->elems[k]), v);
            else
                json_decref(v);
        }
        json_array_append_new(
            view, json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
                            "nodeID", id, "epoch", epoch ? epoch : "", "address",
                            field(h, "address") ? field(h, "address") : "", "status",
                            alive ? "ready" : "dead", "self", STREQ(id, c->node_id), "cpuCount",
                            (json_int_t)num(field(h, "cpus")), "memoryMB",
                            (json_int_t)num(field(h, "memoryMB")), "sandboxCount",
                            (json_int_t)(alive ? num(field(h, "sandboxes")) : 0), "allocatedCPU",
                            (json_int_t)num(field(h, "cpuUsed")), "allocatedMemoryMB",
                            (json_int_t)num(field(h, "memUsedMB")), "startedAtMs",
                            (json_int_t)num(field(h, "startedAt")), "templates", tpl));
    }
    pthread_mutex_lock(&c->lock);
    json_decref(c->view);
    c->view = view;
    pthread_mutex_unlock(&c->lock);
}

static void *sync_main(void *ud)
{
    struct e2b_cluster *c = ud;
    do {
        reconcile(c);
        refresh(c);
    } while (nap(c, c->lease_ms / 3));
    return NULL;
}

/* ---- the API --------------------------------------------------------------------- */

static long machine_memory_mb(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (long)((int64_t)pages * size / (1 << 20)) : 1024;
}

int e2b_cluster_join(const struct e2b_cluster_opts *o, struct e2b_cluster **ret,
                     struct e2b_error **err)
{
    if (!o->address || !*o->address || !strchr(o->address, ':'))
        return e2b_error_set(err, E2B_ERR_USAGE,
                             "a cluster node needs --node-address HOST:PORT, the address "
                             "the other nodes reach it at");
    if (!o->secret || o->secret_len < 16)
        return e2b_error_set(err, E2B_ERR_USAGE,
                             "the cluster secret must be at least 16 bytes "
                             "(--cluster-secret-file or E2B_CLUSTER_SECRET)");
    const char *id = o->node_id && *o->node_id ? o->node_id : o->address;
    for (const char *p = id; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr(".-_:[]", *p)) || p - id >= 128)
            return e2b_error_set(err, E2B_ERR_USAGE,
                                 "node ID '%s' is not 1-128 of [A-Za-z0-9.-_:[]]", id);
    _cleanup_free_ char *lk = key("lease:", id, NULL), *nk = key("node:", id, NULL);
    _cleanup_resp_ struct e2b_resp *lease = NULL, *old = NULL;
    struct e2b_cluster *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->place_lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    c->node_id = xstrdup(id);
    c->address = xstrdup(o->address);
    c->secret = xmalloc(o->secret_len);
    memcpy(c->secret, o->secret, o->secret_len);
    c->secret_len = o->secret_len;
    c->lease_ms = o->lease_ms > 0 ? o->lease_ms : DEFAULT_LEASE_MS;
    c->cpus = o->cpus > 0 ? o->cpus : (int)sysconf(_SC_NPROCESSORS_ONLN);
    c->memory_mb = o->memory_mb > 0 ? o->memory_mb : machine_memory_mb();
    c->on_event = o->on_event;
    c->ud = o->ud;
    c->stop = o->stop;
    c->view = json_array();
    c->owners = json_object();
    if (e2b_redis_open(o->url, &c->redis, err) < 0 || check_secret(c, err) < 0)
        goto fail;
    /* a restart within the lease keeps the epoch and the sandboxes */
    if (e2b_redis_cmd(c->redis, &lease, err, "GET", lk, NULL) < 0 ||
        e2b_redis_cmd(c->redis, &old, err, "HGET", nk, "epoch", NULL) < 0)
        goto fail;
    bool adopt =
        e2b_resp_str(lease) && e2b_resp_str(old) && STREQ(e2b_resp_str(lease), e2b_resp_str(old));
    if (adopt)
        c->epoch = xstrdup(e2b_resp_str(old));
    else if (join_afresh(c, err) < 0)
        goto fail;
    if (register_node(c, !adopt, err) < 0)
        goto fail;
    event(c, "joined the cluster at %s as node '%s' (%s), %s; lease %d ms",
          e2b_redis_where(c->redis), c->node_id, c->address,
          adopt ? "keeping the sandboxes of its run before" : "afresh", c->lease_ms);
    reconcile(c);
    refresh(c);
    if (pthread_create(&c->lease_thread, NULL, lease_main, c) != 0 ||
        (pthread_create(&c->sync_thread, NULL, sync_main, c) != 0 &&
         (pthread_cancel(c->lease_thread), 1))) {
        e2b_error_sys(err, errno, "cannot start the cluster's threads");
        goto fail;
    }
    c->threads = true;
    *ret = c;
    return 0;
fail:
    e2b_cluster_leave(c);
    return e2b_error_wrap(err, "cannot join the cluster");
}

void e2b_cluster_leave(struct e2b_cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->leaving = true;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->lock);
    if (c->threads) {
        pthread_join(c->lease_thread, NULL);
        pthread_join(c->sync_thread, NULL);
    }
    e2b_redis_close(c->redis);
    json_decref(c->view);
    json_decref(c->owners);
    if (c->secret)
        explicit_bzero(c->secret, c->secret_len);
    e2b_free_many(&c->node_id, &c->address, &c->secret, &c->epoch, &c->published_tpl);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->place_lock);
    pthread_cond_destroy(&c->wake);
    free(c);
}

json_t *e2b_cluster_nodes(struct e2b_cluster *c)
{
    pthread_mutex_lock(&c->lock);
    json_t *v = json_deep_copy(c->view);
    pthread_mutex_unlock(&c->lock);
    return v;
}

/* A cached owner, while the view says its node is alive in the same epoch. */
static char *cached_owner(struct e2b_cluster *c, const char *id)
{
    char *addr = NULL;
    pthread_mutex_lock(&c->lock);
    json_t *o = json_object_get(c->owners, id);
    const char *node = json_string_value(json_array_get(o, 0)),
               *epoch = json_string_value(json_array_get(o, 1));
    size_t i;
    json_t *n;
    json_array_foreach(c->view, i, n)
        if (node && epoch && STREQ(e2b_json_str(n, "nodeID"), node)) {
            const char *at = json_string_value(json_array_get(o, 2));
            /* the same run of the node, at the same address (a restart within the lease may move it) */
            if (STREQ(e2b_json_str(n, "status"), "ready") &&
                STREQ(e2b_json_str(n, "epoch"), epoch) && at &&
                STREQ(e2b_json_str(n, "address"), at))
                addr = xstrdup(at);
            break;
        }
    pthread_mutex_unlock(&c->lock);
    return addr;
}

int e2b_cluster_owner(struct e2b_cluster *c, const char *id, char **ret_address,
                      struct e2b_error **err)
{
    *ret_address = NULL;
    if (!e2b_sandbox_id_valid(id))
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found", id);
    if ((*ret_address = cached_owner(c, id)))
        return 0;
    _cleanup_free_ char *k = key("sbx:", id, NULL);
    const char *keys[] = { k };
    _cleanup_resp_ struct e2b_resp *r = NULL;
    if (eval(c, OWNER, 1, keys, 0, NULL, &r, err) < 0)
        return -1;
    if (r->type != E2B_RESP_ARRAY || r->n < 6)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found", id);
    const char *node = e2b_resp_str(r->elems[0]), *epoch = e2b_resp_str(r->elems[1]);
    const char *lease = e2b_resp_str(r->elems[2]), *addr = e2b_resp_str(r->elems[3]);
    const char *renewed = e2b_resp_str(r->elems[5]);
    if (!node || !epoch || !lease || !addr)
        return e2b_error_set(err, E2B_ERR_NOT_FOUND, "sandbox '%s' not found", id);
    if (!*lease || !STREQ(lease, epoch)) {
        _cleanup_free_ char *when = renewed && *renewed ? e2b_rfc3339(num(renewed)) : NULL;
        return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                             "sandbox '%s' was lost: its node '%s' stopped renewing its lease%s%s",
                             id, node, when ? " after " : "", when ? when : "");
    }
    if (STREQ(node, c->node_id))
        return 0;
    pthread_mutex_lock(&c->lock);
    if (json_object_size(c->owners) >= OWNERS_MAX)
        json_object_clear(c->owners);
    json_object_set_new(c->owners, id, json_pack("[s, s, s]", node, epoch, addr));
    pthread_mutex_unlock(&c->lock);
    *ret_address = xstrdup(addr);
    return 0;
}

int e2b_cluster_record(struct e2b_cluster *c, const char *id, const char *template_id, int cpus,
                       long memory_mb, struct e2b_error **err)
{
    _cleanup_free_ char *k = key("sbx:", id, NULL), *set = key("node:", c->node_id, ":sbx");
    _cleanup_free_ char *nk = key("node:", c->node_id, NULL);
    _cleanup_free_ char *cs = xasprintf("%d", cpus), *ms = xasprintf("%ld", memory_mb);
    pthread_mutex_lock(&c->lock);
    _cleanup_free_ char *epoch = xstrdup(c->epoch);
    pthread_mutex_unlock(&c->lock);
    const char *keys[] = { k, set, nk },
               *args[] = { c->node_id, epoch, template_id ? template_id : "", id, cs, ms };
    _cleanup_resp_ struct e2b_resp *r = NULL;
    if (eval(c, RECORD, 3, keys, 6, args, &r, err) < 0)
        return -1;
    if (r->type == E2B_RESP_INT && r->integer == 0)
        return e2b_error_set(err, E2B_ERR_EXISTS,
                             "sandbox ID '%s' belongs to another node of the cluster", id);
    return 0;
}

void e2b_cluster_forget(struct e2b_cluster *c, const char *id)
{
    _cleanup_free_ char *k = key("sbx:", id, NULL), *set = key("node:", c->node_id, ":sbx");
    _cleanup_free_ char *nk = key("node:", c->node_id, NULL);
    const char *keys[] = { k, set, nk }, *args[] = { c->node_id, id };
    eval(c, FORGET, 3, keys, 2, args, NULL, NULL);
}

/* ---- placement ------------------------------------------------------------------- */

struct tpl_choice {
    const char *id, *build, *updated;
    long cpus, mem;
};

/* The newest build of `name` (an ID or a name) among the nodes' templates. */
static void newest(json_t *templates, const char *ref, struct tpl_choice *best)
{
    /* name:tag: the template is the name's (tags are the store's to resolve) */
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(ref, ":"), ref);
    const char *tid;
    json_t *v;
    json_object_foreach(templates, tid, v) {
        bool match = STREQ(tid, name);
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(v, "n"), i, n)
            match |= json_is_string(n) && STREQ(json_string_value(n), name);
        if (!match)
            continue;
        const char *u = e2b_json_str(v, "u") ? e2b_json_str(v, "u") : "";
        if (!best->id || strcmp(u, best->updated) > 0) {
            best->id = tid;
            best->build = e2b_json_str(v, "b");
            best->updated = u;
            best->cpus = (long)e2b_json_int(v, "c", DEFAULT_CPUS);
            best->mem = (long)e2b_json_int(v, "m", DEFAULT_MEMORY_MB);
        }
    }
}

static bool has_build(json_t *node, const struct tpl_choice *t)
{
    json_t *v = json_object_get(json_object_get(node, "templates"), t->id);
    return v && t->build && e2b_json_str(v, "b") && STREQ(e2b_json_str(v, "b"), t->build);
}

/* Load of a node now: what runs, plus reservations not past their time. */
static bool load_of(struct e2b_cluster *c, const char *id, long *cpu, long *mem)
{
    _cleanup_free_ char *nk = key("node:", id, NULL), *rk = key("node:", id, ":resv");
    _cleanup_resp_ struct e2b_resp *h = NULL, *rv = NULL;
    if (e2b_redis_cmd(c->redis, &h, NULL, "HMGET", nk, "cpuUsed", "memUsedMB", NULL) < 0 ||
        e2b_redis_cmd(c->redis, &rv, NULL, "HVALS", rk, NULL) < 0)
        return false;
    *cpu = (long)num(e2b_resp_str(e2b_resp_elem(h, 0)));
    *mem = (long)num(e2b_resp_str(e2b_resp_elem(h, 1)));
    int64_t now = e2b_wall_ms();
    for (size_t i = 0; rv && i < rv->n; i++) {
        long long rc = 0, rm = 0, until = 0;
        if (e2b_resp_str(rv->elems[i]) &&
            sscanf(e2b_resp_str(rv->elems[i]), "%lld %lld %lld", &rc, &rm, &until) == 3 &&
            until >= now)
            *cpu += (long)rc, *mem += (long)rm;
    }
    return true;
}

int e2b_cluster_place(struct e2b_cluster *c, const char *template, char *const *exclude,
                      struct e2b_cluster_pick *ret, struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_json_ json_t *view = e2b_cluster_nodes(c);
    bool host = !template || STREQ(template, "host");
    /* this node's own build of the template fresh from its store, not as last published */
    size_t i;
    json_t *n;
    if (!host) {
        _cleanup_json_ json_t *mine = json_object();
        struct e2b_store store;
        json_t *meta = NULL;
        if (e2b_store_open(&store, NULL) == 0) {
            if (e2b_store_find(&store, template, &meta, NULL, NULL) == 0 &&
                e2b_json_str(meta, "templateID") && e2b_json_str(meta, "buildID")) {
                json_t *names = json_array();
                json_array_extend(names, json_object_get(meta, "aliases"));
                json_object_set_new(
                    mine, e2b_json_str(meta, "templateID"),
                    json_pack("{s:s, s:s?, s:o, s:I, s:I}", "b", e2b_json_str(meta, "buildID"), "u",
                              e2b_json_str(meta, "updatedAt"), "n", names, "c",
                              (json_int_t)e2b_json_int(meta, "cpuCount", DEFAULT_CPUS), "m",
                              (json_int_t)e2b_json_int(meta, "memoryMB", DEFAULT_MEMORY_MB)));
            }
            json_decref(meta);
            e2b_store_close(&store);
        }
        json_array_foreach(view, i, n)
            if (json_is_true(json_object_get(n, "self"))) {
                json_t *t = json_object_get(n, "templates");
                if (json_is_object(t))
                    json_object_update(t, mine);
            }
    }
    struct tpl_choice t = { .cpus = DEFAULT_CPUS, .mem = DEFAULT_MEMORY_MB };
    if (!host) {
        json_array_foreach(view, i, n)
            if (STREQ(e2b_json_str(n, "status"), "ready"))
                newest(json_object_get(n, "templates"), template, &t);
        if (!t.id)
            return e2b_error_set(err, E2B_ERR_NOT_FOUND,
                                 "template '%s' not found on any node of the cluster", template);
    }
    pthread_mutex_lock(&c->place_lock);
    json_t *best = NULL;
    double best_score = 0;
    json_array_foreach(view, i, n) {
        const char *id = e2b_json_str(n, "nodeID");
        if (!STREQ(e2b_json_str(n, "status"), "ready"))
            continue;
        bool skip = false;
        for (char *const *x = exclude; x && *x; x++)
            skip |= STREQ(*x, id);
        long cpu = 0, mem = 0;
        if (skip || !load_of(c, id, &cpu, &mem))
            continue;
        long cap_cpu = (long)e2b_json_int(n, "cpuCount", 1),
             cap_mem = (long)e2b_json_int(n, "memoryMB", 1);
        if (cap_cpu < 1)
            cap_cpu = 1;
        if (cap_mem < 1)
            cap_mem = 1;
        if (cap_mem - mem < t.mem)
            continue; /* no room for its memory */
        /* CPUs are shared (overcommitted), memory is not */
        double score = (double)(cap_mem - mem - t.mem) / (double)cap_mem +
                       (double)(cap_cpu - cpu - t.cpus) / (double)cap_cpu +
                       (host || has_build(n, &t) ? LOCALITY_BONUS : 0);
        if (!best || score > best_score)
            best = n, best_score = score;
    }
    if (!best) {
        pthread_mutex_unlock(&c->place_lock);
        return e2b_error_set(
            err, E2B_ERR_NOSPACE,
            "no node of the cluster has room for a sandbox of %ld MiB (or none is alive)", t.mem);
    }
    const char *id = e2b_json_str(best, "nodeID");
    ret->node_id = xstrdup(id);
    ret->address =
        json_is_true(json_object_get(best, "self")) ? NULL : xstrdup(e2b_json_str(best, "address"));
    ret->template_id = xstrdup(host ? "host" : t.id);
    ret->build_id = t.build ? xstrdup(t.build) : NULL;
    ret->cpus = (int)t.cpus;
    ret->memory_mb = t.mem;
    if (!host && !has_build(best, &t))
        json_array_foreach(view, i, n)
            if (STREQ(e2b_json_str(n, "status"), "ready") && has_build(n, &t)) {
                ret->source = xstrdup(e2b_json_str(n, "address"));
                break;
            }
    ret->reservation = random_hex(8);
    _cleanup_free_ char *rk = key("node:", id, ":resv");
    _cleanup_free_ char *v =
        xasprintf("%d %ld %lld", ret->cpus, ret->memory_mb, (long long)e2b_wall_ms() + RESERVE_MS);
    e2b_redis_cmd(c->redis, NULL, NULL, "HSET", rk, ret->reservation, v, NULL);
    pthread_mutex_unlock(&c->place_lock);
    return 0;
}

void e2b_cluster_unreserve(struct e2b_cluster *c, struct e2b_cluster_pick *p)
{
    if (!p->reservation)
        return;
    _cleanup_free_ char *rk = key("node:", p->node_id, ":resv");
    e2b_redis_cmd(c->redis, NULL, NULL, "HDEL", rk, p->reservation, NULL);
    free(p->reservation);
    p->reservation = NULL;
}

void e2b_cluster_pick_release(struct e2b_cluster_pick *p)
{
    e2b_free_many(&p->node_id, &p->address, &p->template_id, &p->build_id, &p->source,
                  &p->reservation);
}

/* ---- signing ---------------------------------------------------------------------- */

static char *signature(struct e2b_cluster *c, const char *node, const char *ms, const char *method,
                       const char *target, const void *body, size_t len)
{
    char bh[E2B_SHA256_HEX_SIZE];
    e2b_sha256_hex(body ? body : "", body ? len : 0, bh);
    _cleanup_free_ char *msg =
        xasprintf("e2b-cluster-v1\n%s\n%s\n%s\n%s\n%s", node, ms, method, target, bh);
    return hmac_hex(c, msg, strlen(msg));
}

void e2b_cluster_sign(struct e2b_cluster *c, const char *method, const char *target,
                      const void *body, size_t len, char *h[2])
{
    _cleanup_free_ char *ms = xasprintf("%lld", (long long)e2b_wall_ms());
    _cleanup_free_ char *sig = signature(c, c->node_id, ms, method, target, body, len);
    h[0] = xasprintf("E2b-Cluster-Node: %s", c->node_id);
    h[1] = xasprintf("E2b-Cluster-Auth: %s.%s", ms, sig);
}

int e2b_cluster_verify(struct e2b_cluster *c, const char *node, const char *auth,
                       const char *method, const char *target, const void *body, size_t len,
                       struct e2b_error **err)
{
    if (!node || !auth)
        return e2b_error_set(err, E2B_ERR_AUTH,
                             "a call between cluster nodes needs E2b-Cluster-Node and "
                             "E2b-Cluster-Auth headers");
    const char *dot = strchr(auth, '.');
    if (!dot || dot == auth || (size_t)(dot - auth) > 15 ||
        strspn(auth, "0123456789") != (size_t)(dot - auth))
        return e2b_error_set(err, E2B_ERR_AUTH, "E2b-Cluster-Auth is not <ms>.<signature>");
    _cleanup_free_ char *ms = xstrndup(auth, (size_t)(dot - auth));
    long long t = strtoll(ms, NULL, 10), now = e2b_wall_ms();
    if (t < now - SIGN_WINDOW_MS || t > now + SIGN_WINDOW_MS)
        return e2b_error_set(err, E2B_ERR_AUTH,
                             "the cluster signature of node '%s' is %lld s off this node's "
                             "clock (more than %d s)",
                             node, (now - t) / 1000, SIGN_WINDOW_MS / 1000);
    _cleanup_free_ char *want = signature(c, node, ms, method, target, body, len);
    if (!e2b_consttime_streq(want, dot + 1))
        return e2b_error_set(err, E2B_ERR_AUTH,
                             "the cluster signature of node '%s' does not match: not signed "
                             "with this cluster's secret",
                             node);
    return 0;
}
