/* serve-warm.c - see serve-warm.h.
 *
 * One manager thread per pool sleeps on the warm condition variable and,
 * while the pool has fewer than it wants (ready plus being made), starts a
 * maker thread per missing sandbox, at most MAKERS at once, once takes
 * paused for QUIET_MS (or the pool is empty); a maker runs one create
 * through the spawner and puts the sandbox on the pool's ready list.
 * A create that fails makes the pool wait (1 s, doubling up to a minute)
 * before it tries again. take pops the oldest ready sandbox and adopts it
 * (in the calling thread: a state update and envd's /init, no fork).
 */
#include "serve-warm.h"

#include <pthread.h>
#include <time.h>

#define MAKERS         2   /* creates of one pool at once */
#define QUIET_MS       150 /* refills wait for takes to pause this long (or the pool to empty) */
#define WARM_TIMEOUT_S (24 * 3600) /* a warm sandbox's own deadline (E2B's longest) */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

struct pool {
    struct e2b_serve_warm *w;
    char *key;     /* the template as configured */
    json_t *names; /* what else names it: its ID, aliases, names */
    int want;
    char **ready; /* oldest first */
    size_t n_ready;
    int making;
    int64_t retry_at;  /* after a failed create: no new one before (boot ms) */
    int64_t last_take; /* boot ms */
    int backoff_ms;
    pthread_t manager;
    bool started;
};

struct e2b_serve_warm {
    const struct e2b_serve_opts *o;
    struct e2b_backend *b; /* this machine's, creates forked from the helper (serve-spawn.h) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    struct pool *pools;
    size_t n;
};

int e2b_serve_warm_parse(const char *arg, json_t *pools, struct e2b_error **err)
{
    const char *eq = strrchr(arg, '=');
    char *end = NULL;
    long n = eq ? strtol(eq + 1, &end, 10) : 0;
    if (!eq || eq == arg || !end || *end || eq[1] == '\0' || n < 1 || n > E2B_WARM_MAX)
        return e2b_error_set(err, E2B_ERR_USAGE,
                             "--warm '%s' is not TEMPLATE=N (a template and 1..%d sandboxes)", arg,
                             E2B_WARM_MAX);
    _cleanup_free_ char *tpl = xstrndup(arg, (size_t)(eq - arg));
    json_object_set_new(pools, tpl, json_integer(n));
    return 0;
}

static bool names_template(const struct pool *p, const char *t)
{
    if (STREQ(p->key, t))
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(p->names, i, v)
        if (STREQ(json_string_value(v) ?: "", t))
            return true;
    return false;
}

/* The create a warm sandbox of p is made with. */
static struct e2b_sandbox_spec warm_spec(const struct pool *p)
{
    const struct e2b_serve_opts *o = p->w->o;
    return (struct e2b_sandbox_spec){ .template = p->key,
                                      .timeout_s = WARM_TIMEOUT_S,
                                      .allow_internet = !o->deny_internet,
                                      .runtime_default = o->runtime,
                                      .kernel = o->kernel,
                                      .warm_pool = p->key };
}

static void *maker_main(void *ud)
{
    struct pool *p = ud;
    struct e2b_serve_warm *w = p->w;
    struct e2b_sandbox_spec spec = warm_spec(p);
    _cleanup_error_ struct e2b_error *err = NULL;
    json_t *sbx = NULL;
    int r = w->b->ops->sandboxes.create(w->b, &spec, &sbx, &err);
    const char *id = r == 0 ? e2b_json_str(sbx, "sandboxID") : NULL;
    pthread_mutex_lock(&w->mu);
    p->making--;
    if (id && !w->stop) {
        p->ready = xrealloc(p->ready, (p->n_ready + 1) * sizeof(*p->ready));
        p->ready[p->n_ready++] = xstrdup(id);
        p->backoff_ms = 0;
        id = NULL; /* kept */
    } else if (r < 0) {
        p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (p->backoff_ms > BACKOFF_MAX_MS)
            p->backoff_ms = BACKOFF_MAX_MS;
        p->retry_at = e2b_boot_ms() + p->backoff_ms;
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (id) /* made as the server stops */
        w->b->ops->sandboxes.kill(w->b, id, NULL);
    json_decref(sbx);
    return NULL;
}

static void *manager_main(void *ud)
{
    struct pool *p = ud;
    struct e2b_serve_warm *w = p->w;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        int64_t now = e2b_boot_ms();
        /* a burst of takes is served first: refills wait for a pause in it
         * (their creates would take the CPU the hand-outs need) unless the
         * pool ran dry, when every create is an ordinary one anyway */
        int64_t quiet_at = p->n_ready ? p->last_take + QUIET_MS : 0;
        if ((int)p->n_ready + p->making < p->want && p->making < MAKERS && now >= p->retry_at &&
            now >= quiet_at) {
            pthread_t t;
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            pthread_attr_setstacksize(&attr, 256 * 1024);
            p->making++;
            if (pthread_create(&t, &attr, maker_main, p) != 0)
                p->making--;
            pthread_attr_destroy(&attr);
            continue;
        }
        /* wake for a take, a made sandbox, the end of a back-off, or the stop */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t wait_ms = p->retry_at > now ? p->retry_at - now
                          : quiet_at > now  ? quiet_at - now
                                            : 1000;
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L)
            until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&w->cv, &w->mu, &until);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Warm sandboxes a server before this one left: the pool's own are taken
 * in (up to what it wants), the rest killed. */
static void take_leftovers(struct e2b_serve_warm *w)
{
    struct e2b_backend *b = w->b;
    struct e2b_sandbox_filter f = { .states = "running" };
    _cleanup_json_ json_t *all = NULL;
    char *next = NULL;
    if (b->ops->sandboxes.list(b, &f, &all, &next, NULL) < 0)
        return;
    free(next);
    size_t i;
    json_t *s;
    json_array_foreach(all, i, s) {
        const char *pool = e2b_json_str(s, "warmPool"), *id = e2b_json_str(s, "sandboxID");
        if (!pool || !id)
            continue;
        struct pool *p = NULL;
        for (size_t k = 0; k < w->n && !p; k++)
            if (STREQ(w->pools[k].key, pool))
                p = &w->pools[k];
        if (p && (int)p->n_ready < p->want) {
            p->ready = xrealloc(p->ready, (p->n_ready + 1) * sizeof(*p->ready));
            p->ready[p->n_ready++] = xstrdup(id);
        } else {
            b->ops->sandboxes.kill(b, id, NULL);
        }
    }
}

int e2b_serve_warm_start(const struct e2b_serve_opts *o, struct e2b_backend *b, const json_t *pools,
                         struct e2b_serve_warm **ret, struct e2b_error **err)
{
    *ret = NULL;
    if (!json_is_object(pools))
        return e2b_error_set(err, E2B_ERR_USAGE, "warm pools must be an object {TEMPLATE: N}");
    if (!b)
        return e2b_error_set(err, E2B_ERR_UNSUPPORTED,
                             "warm sandboxes need sandboxes on this machine (a local backend)");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)pools, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > E2B_WARM_MAX || !*k)
            return e2b_error_set(err, E2B_ERR_USAGE,
                                 "warm pool '%s' must be a template and 1..%d sandboxes", k,
                                 E2B_WARM_MAX);
    }
    struct e2b_serve_warm *w = xcalloc(1, sizeof(*w));
    w->o = o;
    w->b = b;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->n = json_object_size(pools);
    w->pools = xcalloc(w->n ? w->n : 1, sizeof(*w->pools));
    size_t i = 0;
    json_object_foreach((json_t *)pools, k, v) {
        struct pool *p = &w->pools[i++];
        *p = (struct pool){
            .w = w, .key = xstrdup(k), .names = json_array(), .want = (int)json_integer_value(v)
        };
        /* what else names the template: a create may use its ID or a name */
        json_t *t = NULL;
        if (b->ops->templates.get(b, k, &t, NULL) == 0) {
            if (e2b_json_str(t, "templateID"))
                json_array_append(p->names, json_object_get(t, "templateID"));
            json_array_extend(p->names, json_object_get(t, "aliases") ?: json_array());
            json_array_extend(p->names, json_object_get(t, "names") ?: json_array());
            json_decref(t);
        }
    }
    take_leftovers(w);
    for (i = 0; i < w->n; i++)
        w->pools[i].started =
            pthread_create(&w->pools[i].manager, NULL, manager_main, &w->pools[i]) == 0;
    *ret = w;
    return 0;
}

int e2b_serve_warm_take(struct e2b_serve_warm *w, const struct e2b_sandbox_spec *spec, json_t **ret)
{
    if (!w || spec->runtime || spec->cpu_count || spec->memory_mb || spec->disk_mb ||
        spec->pids_max || !spec->template || spec->allow_internet != !w->o->deny_internet)
        return 0;
    struct pool *p = NULL;
    for (size_t i = 0; i < w->n && !p; i++)
        if (names_template(&w->pools[i], spec->template))
            p = &w->pools[i];
    if (!p)
        return 0;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        char *id = NULL;
        if (p->n_ready) {
            id = p->ready[0];
            memmove(p->ready, p->ready + 1, --p->n_ready * sizeof(*p->ready));
            p->last_take = e2b_boot_ms();
            pthread_cond_broadcast(&w->cv); /* make another */
        }
        pthread_mutex_unlock(&w->mu);
        if (!id)
            return 0;
        struct e2b_backend *b = w->b;
        int r = b->ops->sandboxes.adopt(b, id, spec, ret, NULL);
        free(id);
        if (r == 0)
            return 1;
        /* it ended meanwhile (killed, timed out): the next one */
    }
}

void e2b_serve_warm_stop(struct e2b_serve_warm *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < w->n; i++)
        if (w->pools[i].started)
            pthread_join(w->pools[i].manager, NULL);
    /* creates under way end (a maker kills what it made now), bounded: a
     * create gives up within E2B_RUNTIME_READY_MS and its ready command's
     * minute; makers still running then keep w (the process is ending) */
    bool busy = true;
    for (int t = 0; t < 1200 && busy; t++) {
        busy = false;
        pthread_mutex_lock(&w->mu);
        for (size_t i = 0; i < w->n; i++)
            busy |= w->pools[i].making > 0;
        pthread_mutex_unlock(&w->mu);
        struct timespec ts = { 0, 100 * 1000000L };
        if (busy)
            nanosleep(&ts, NULL);
    }
    struct e2b_backend *b = w->b;
    for (size_t i = 0; i < w->n; i++) {
        struct pool *p = &w->pools[i];
        for (size_t k = 0; k < p->n_ready; k++) {
            b->ops->sandboxes.kill(b, p->ready[k], NULL);
            free(p->ready[k]);
        }
        p->n_ready = 0;
        if (busy)
            continue;
        free(p->ready);
        free(p->key);
        json_decref(p->names);
    }
    if (busy)
        return;
    free(w->pools);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
