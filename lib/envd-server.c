/* envd-server.c - see envd-server.h */
#include "envd-server.h"
#include "envd-crypto.h"
#include "envd-files.h"
#include "envd-fs.h"
#include "envd-process.h"
#include "envd-watch.h"
#include "fsutil.h"
#include "strbuf.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <malloc.h>
#include <time.h>

#define MAX_RPC_BODY (16u * 1024 * 1024)

enum rpc_kind { RPC_UNARY, RPC_SERVER_STREAM, RPC_CLIENT_STREAM };

struct route {
    const char *path;
    enum rpc_kind kind;
    e2b_envd_rpc_fn fn;
};

static const struct route routes[] = {
    {"/process.Process/Start", RPC_SERVER_STREAM, e2b_process_start},
    {"/process.Process/Connect", RPC_SERVER_STREAM, e2b_process_connect},
    {"/process.Process/List", RPC_UNARY, e2b_process_list},
    {"/process.Process/SendInput", RPC_UNARY, e2b_process_send_input},
    {"/process.Process/SendSignal", RPC_UNARY, e2b_process_send_signal},
    {"/process.Process/CloseStdin", RPC_UNARY, e2b_process_close_stdin},
    {"/process.Process/Update", RPC_UNARY, e2b_process_update},
    {"/process.Process/StreamInput", RPC_CLIENT_STREAM, NULL},
    {"/filesystem.Filesystem/Stat", RPC_UNARY, e2b_fs_stat},
    {"/filesystem.Filesystem/MakeDir", RPC_UNARY, e2b_fs_make_dir},
    {"/filesystem.Filesystem/Move", RPC_UNARY, e2b_fs_move},
    {"/filesystem.Filesystem/ListDir", RPC_UNARY, e2b_fs_list_dir},
    {"/filesystem.Filesystem/Remove", RPC_UNARY, e2b_fs_remove},
    {"/filesystem.Filesystem/WatchDir", RPC_SERVER_STREAM, e2b_fs_watch_dir},
    {"/filesystem.Filesystem/CreateWatcher", RPC_UNARY, e2b_fs_create_watcher},
    {"/filesystem.Filesystem/GetWatcherEvents", RPC_UNARY, e2b_fs_get_watcher_events},
    {"/filesystem.Filesystem/RemoveWatcher", RPC_UNARY, e2b_fs_remove_watcher},
};

/* ---- plain routes ---- */

static void handle_envs(struct e2b_http_req *req)
{
    e2b_http_add_header(req, "Cache-Control", "no-store");
    _cleanup_free_ char *s = e2b_json_dump(e2b_envd.env, JSON_COMPACT);
    e2b_http_reply(req, 200, "application/json", s, strlen(s));
}

static unsigned long long prev_busy, prev_total;

static void handle_metrics(struct e2b_http_req *req)
{
    unsigned long long v[10] = {0}, busy = 0, total = 0;
    FILE *f = fopen("/proc/stat", "re");
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) >= 4) {
            for (int i = 0; i < 8; i++)
                total += v[i];
            busy = total - v[3] - v[4];
        }
        fclose(f);
    }
    double pct = 0;
    if (total > prev_total)
        pct = 100.0 * (double)(busy - prev_busy) / (double)(total - prev_total);
    prev_busy = busy;
    prev_total = total;
    unsigned long long mtotal = 0, mavail = 0, mcache = 0, mfree = 0, mbuf = 0;
    f = fopen("/proc/meminfo", "re");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f)) {
            unsigned long long x;
            if (sscanf(line, "MemTotal: %llu", &x) == 1) mtotal = x * 1024;
            else if (sscanf(line, "MemAvailable: %llu", &x) == 1) mavail = x * 1024;
            else if (sscanf(line, "MemFree: %llu", &x) == 1) mfree = x * 1024;
            else if (sscanf(line, "Buffers: %llu", &x) == 1) mbuf = x * 1024;
            else if (sscanf(line, "Cached: %llu", &x) == 1) mcache = x * 1024;
        }
        fclose(f);
    }
    if (!mavail)
        mavail = mfree + mbuf + mcache;
    unsigned long long mused = mtotal > mavail ? mtotal - mavail : 0;
    struct statvfs sv;
    unsigned long long dtotal = 0, dused = 0;
    if (statvfs("/", &sv) == 0) {
        dtotal = (unsigned long long)sv.f_blocks * sv.f_frsize;
        dused = dtotal - (unsigned long long)sv.f_bfree * sv.f_frsize;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    json_t *j = json_pack("{s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "ts", (json_int_t)time(NULL),
                          "cpu_count", (json_int_t)(ncpu > 0 ? ncpu : 1), "cpu_used_pct",
                          (double)((int)(pct * 100)) / 100.0, "mem_total", (json_int_t)mtotal,
                          "mem_used", (json_int_t)mused, "mem_cache", (json_int_t)mcache,
                          "mem_total_mib", (json_int_t)(mtotal >> 20), "mem_used_mib",
                          (json_int_t)(mused >> 20), "disk_used", (json_int_t)dused, "disk_total",
                          (json_int_t)dtotal);
    _cleanup_free_ char *s = e2b_json_dump(j, JSON_COMPACT);
    json_decref(j);
    e2b_http_add_header(req, "Cache-Control", "no-store");
    e2b_http_reply(req, 200, "application/json", s, strlen(s));
}

/* What /init sets (envVars, the default user and workdir, the access
 * token, the clock), from its body j; j is consumed. authorized: the caller
 * holds the current token, or there is none yet. A refusal leaves all as it
 * was and says why in *ret_msg, with the HTTP status for it. */
static int apply_init(json_t *j, bool authorized, int *ret_status, char **ret_msg)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    *ret_status = 400;
    if (!json_is_object(j)) {
        json_decref(j);
        *ret_msg = xstrdup("init body: not a JSON object");
        return -1;
    }
    const char *token = NULL, *user = NULL, *workdir = NULL, *ts = NULL;
    json_t *envs = NULL;
    if (e2b_pj_str(j, "accessToken", "access_token", &token, &err) < 0 ||
        e2b_pj_str(j, "defaultUser", "default_user", &user, &err) < 0 ||
        e2b_pj_str(j, "defaultWorkdir", "default_workdir", &workdir, &err) < 0 ||
        e2b_pj_str(j, "timestamp", NULL, &ts, &err) < 0 ||
        e2b_pj_obj(j, "envVars", "env_vars", &envs, &err) < 0) {
        json_decref(j);
        *ret_msg = xstrdup(err->msg);
        return -1;
    }
    /* Once secured, only the holder of the token may re-initialise. */
    if (!authorized && !(token && e2b_envd.access_token && e2b_consttime_streq(token, e2b_envd.access_token))) {
        json_decref(j);
        *ret_status = 401;
        *ret_msg = xstrdup("access token mismatch");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(envs, k, v) {
        if (!json_is_string(v)) {
            *ret_msg = xasprintf("envVars.%s: not a string", k);
            json_decref(j);
            return -1;
        }
    }
    json_object_foreach(envs, k, v) json_object_set(e2b_envd.env, k, v);
    if (token) {
        free(e2b_envd.access_token);
        e2b_envd.access_token = *token ? xstrdup(token) : NULL;
    }
    if (user && *user) {
        free(e2b_envd.default_user);
        e2b_envd.default_user = xstrdup(user);
    }
    if (workdir && *workdir) {
        free(e2b_envd.default_workdir);
        e2b_envd.default_workdir = xstrdup(workdir);
    }
    if (ts && e2b_envd.sync_clock) {
        struct tm tm = {0};
        const char *rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
        if (rest) {
            struct timeval tv = {timegm(&tm), 0};
            struct timeval now;
            gettimeofday(&now, NULL);
            if (tv.tv_sec > now.tv_sec + 1 || tv.tv_sec < now.tv_sec - 1)
                settimeofday(&tv, NULL);
        }
    }
    json_decref(j);
    return 0;
}

static void init_done(struct e2b_http_req *req, struct evbuffer *body, void *arg)
{
    (void)arg;
    if (!body)
        return;
    size_t n = evbuffer_get_length(body);
    json_t *j = NULL;
    _cleanup_error_ struct e2b_error *err = NULL;
    if (n == 0) {
        j = json_object();
    } else if (e2b_json_parse((const char *)evbuffer_pullup(body, -1), n, "init body", &j, &err) < 0) {
        e2b_envd_http_error(req, 400, "%s", err->msg);
        return;
    }
    int status;
    _cleanup_free_ char *msg = NULL;
    if (apply_init(j, !e2b_envd.access_token || e2b_envd_token_ok(req), &status, &msg) < 0) {
        e2b_envd_http_error(req, status, "%s", msg);
        return;
    }
    e2b_http_add_header(req, "X-Envd-Version", E2B_ENVD_VERSION);
    e2b_http_add_header(req, "Cache-Control", "no-store");
    e2b_http_reply(req, 204, NULL, NULL, 0);
}

/* --init-fd: the /init body from whoever started envd (a sandbox's
 * supervisor), applied before envd listens, so that the first request
 * already finds it and starting a sandbox needs no HTTP round trip. */
static int init_from_fd(int fd)
{
    enum { MAX_INIT = 1024 * 1024 };
    _cleanup_free_ char *body = NULL;
    size_t len = 0;
    _cleanup_error_ struct e2b_error *err = NULL;
    int r = e2b_read_fd(fd, "--init-fd", MAX_INIT + 1, &body, &len, &err);
    close(fd);
    if (r < 0) {
        fprintf(stderr, "envd: %s\n", err->msg);
        return -1;
    }
    if (len > MAX_INIT) {
        fprintf(stderr, "envd: --init-fd: over 1 MiB\n");
        return -1;
    }
    json_t *j = NULL;
    if (e2b_json_parse(len ? body : "{}", len ? len : 2, "--init-fd", &j, &err) < 0) {
        fprintf(stderr, "envd: %s\n", err->msg);
        return -1;
    }
    int status;
    _cleanup_free_ char *msg = NULL;
    if (apply_init(j, true, &status, &msg) < 0) {
        fprintf(stderr, "envd: --init-fd: %s\n", msg);
        return -1;
    }
    return 0;
}

/* ---- Connect dispatch ---- */

struct rpc_call {
    const struct route *rt;
    struct e2b_user *user;
};

static bool ctype_is(const char *ct, const char *want)
{
    if (!ct)
        return false;
    size_t n = strlen(want);
    if (strncasecmp(ct, want, n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static void rpc_body_done(struct e2b_http_req *req, struct evbuffer *body, void *arg)
{
    struct rpc_call *call = arg;
    const struct route *rt = call->rt;
    _cleanup_user_ struct e2b_user *user = call->user;
    free(call);
    if (!body)
        return;
    size_t n = evbuffer_get_length(body);
    const char *data = n ? (const char *)evbuffer_pullup(body, -1) : "";
    bool stream = rt->kind == RPC_SERVER_STREAM;
    if (stream) {
        unsigned flags;
        const char *payload;
        size_t plen;
        ssize_t fl = e2b_rpc_unframe(data, n, &flags, &payload, &plen);
        if (fl <= 0 || (size_t)fl != n) {
            e2b_envd_stream_error(req, RPC_INVALID_ARGUMENT, "protocol error: bad request envelope");
            return;
        }
        if (flags & E2B_RPC_FLAG_COMPRESSED) {
            e2b_envd_stream_error(req, RPC_INTERNAL, "protocol error: compressed message without encoding");
            return;
        }
        data = payload;
        n = plen;
    }
    json_t *msg = NULL;
    json_error_t jerr;
    if (n == 0 || !(msg = json_loadb(data, n, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(msg)) {
        const char *why = n == 0 ? "zero-length payload is not a valid JSON object"
                          : msg   ? "message is not a JSON object"
                                  : jerr.text;
        json_decref(msg);
        if (stream)
            e2b_envd_stream_error(req, RPC_INVALID_ARGUMENT, "unmarshal request: %s", why);
        else
            e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "unmarshal request: %s", why);
        return;
    }
    rt->fn(req, msg, user);
    json_decref(msg);
}

static void handle_rpc(struct e2b_http_req *req, const struct route *rt)
{
    if (!STREQ(e2b_http_method(req), "POST")) {
        e2b_http_add_header(req, "Allow", "POST");
        e2b_http_reply(req, 405, NULL, NULL, 0);
        return;
    }
    const char *ct = e2b_http_header(req, "Content-Type");
    bool want_stream = rt->kind != RPC_UNARY;
    if (!ctype_is(ct, want_stream ? "application/connect+json" : "application/json")) {
        e2b_http_add_header(req, "Accept-Post", want_stream ? "application/connect+json" : "application/json");
        e2b_http_reply(req, 415, NULL, NULL, 0);
        return;
    }
    if (e2b_rpc_timeout_ms(req) < 0) {
        if (want_stream)
            e2b_envd_stream_error(req, RPC_INVALID_ARGUMENT, "protocol error: invalid Connect-Timeout-Ms");
        else
            e2b_rpc_error(req, RPC_INVALID_ARGUMENT, "protocol error: invalid Connect-Timeout-Ms");
        return;
    }
    const char *enc = e2b_http_header(req, want_stream ? "Connect-Content-Encoding" : "Content-Encoding");
    if (enc && strcasecmp(enc, "identity") != 0) {
        if (want_stream)
            e2b_envd_stream_error(req, RPC_UNIMPLEMENTED, "unsupported compression '%s'", enc);
        else
            e2b_rpc_error(req, RPC_UNIMPLEMENTED, "unsupported compression '%s'", enc);
        return;
    }
    _cleanup_error_ struct e2b_error *err = NULL;
    struct e2b_user *user = NULL;
    if (e2b_envd_request_user(req, NULL, &user, &err) < 0) {
        if (want_stream)
            e2b_envd_stream_error(req, RPC_UNAUTHENTICATED, "%s", err->msg);
        else
            e2b_rpc_error(req, RPC_UNAUTHENTICATED, "%s", err->msg);
        return;
    }
    if (rt->kind == RPC_CLIENT_STREAM) {
        e2b_process_stream_input(req, user);
        e2b_user_free(user);
        return;
    }
    struct rpc_call *call = xcalloc(1, sizeof(*call));
    call->rt = rt;
    call->user = user;
    e2b_http_read_body(req, MAX_RPC_BODY, rpc_body_done, call);
}

/* Give freed heap back to the kernel once requests stop coming, so an idle
 * envd stays small after a burst (a big ListDir, a large JSON body). */
static struct event *trim_ev;

static void trim_heap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    malloc_trim(0);
}

static void handle(struct e2b_http_req *req, void *arg)
{
    (void)arg;
    if (trim_ev) {
        struct timeval tv = {2, 0};
        event_add(trim_ev, &tv);
    }
    const char *path = e2b_http_path(req), *method = e2b_http_method(req);
    bool get = STREQ(method, "GET") || STREQ(method, "HEAD");
    if (e2b_envd.verbose)
        fprintf(stderr, "envd: %s %s\n", method, path);

    if (STREQ(method, "OPTIONS")) { /* CORS preflight: anything goes, like upstream */
        e2b_http_add_header(req, "Access-Control-Allow-Methods", "HEAD, GET, POST, PUT, PATCH, DELETE");
        e2b_http_add_header(req, "Access-Control-Allow-Headers", "*");
        e2b_http_add_header(req, "Access-Control-Max-Age", "7200");
        e2b_http_reply(req, 204, NULL, NULL, 0);
        return;
    }
    if (STREQ(path, "/health")) {
        if (!get) {
            e2b_envd_http_error(req, 405, "method not allowed");
            return;
        }
        e2b_http_add_header(req, "Cache-Control", "no-store");
        e2b_http_reply(req, 204, NULL, NULL, 0);
        return;
    }
    if (STREQ(path, "/init")) {
        if (!STREQ(method, "POST")) {
            e2b_envd_http_error(req, 405, "method not allowed");
            return;
        }
        e2b_http_read_body(req, 1024 * 1024, init_done, NULL);
        return;
    }
    if (STREQ(path, "/files") || STREQ(path, "/files/compose")) {
        e2b_files_handle(req);
        return;
    }
    const struct route *rt = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(routes) && !rt; i++)
        if (STREQ(routes[i].path, path))
            rt = &routes[i];
    if (!e2b_envd_token_ok(req)) {
        if (rt)
            e2b_rpc_error(req, RPC_UNAUTHENTICATED, "invalid access token");
        else
            e2b_envd_http_error(req, 401, "invalid access token");
        return;
    }
    if (rt) {
        handle_rpc(req, rt);
        return;
    }
    if (STREQ(path, "/envs") || STREQ(path, "/metrics")) {
        if (!get) {
            e2b_envd_http_error(req, 405, "method not allowed");
            return;
        }
        if (STREQ(path, "/envs"))
            handle_envs(req);
        else
            handle_metrics(req);
        return;
    }
    if (e2b_str_has_prefix(path, "/process.Process/") || e2b_str_has_prefix(path, "/filesystem.Filesystem/")) {
        /* no such procedure: 404 like an HTTP mux, with a Connect body */
        _cleanup_free_ char *m = xasprintf("%s is not implemented", path);
        json_t *j = e2b_rpc_error_json(RPC_UNIMPLEMENTED, m);
        _cleanup_free_ char *s = e2b_json_dump(j, JSON_COMPACT);
        json_decref(j);
        e2b_http_reply(req, 404, "application/json", s, strlen(s));
        return;
    }
    e2b_envd_http_error(req, 404, "not found");
}

/* The listener for the sandbox's own processes (--local-listen): E2B's
 * envd answers them on localhost:49983 too (its code interpreter reads
 * /envs there), but here only /health and /envs are served on it: the
 * process and file services stay on the channel the host holds, so a
 * process in the sandbox gets no more through envd than it has. */
static void handle_local(struct e2b_http_req *req, void *arg)
{
    (void)arg;
    const char *path = e2b_http_path(req), *method = e2b_http_method(req);
    bool get = STREQ(method, "GET") || STREQ(method, "HEAD");
    if (e2b_envd.verbose)
        fprintf(stderr, "envd: local %s %s\n", method, path);
    if (!STREQ(path, "/health") && !STREQ(path, "/envs")) {
        e2b_envd_http_error(req, 404, "not found (only /health and /envs are served here)");
        return;
    }
    if (!get) {
        e2b_envd_http_error(req, 405, "method not allowed");
        return;
    }
    if (STREQ(path, "/health")) {
        e2b_http_add_header(req, "Cache-Control", "no-store");
        e2b_http_reply(req, 204, NULL, NULL, 0);
    } else if (!e2b_envd_token_ok(req)) {
        e2b_envd_http_error(req, 401, "invalid access token");
    } else {
        handle_envs(req);
    }
}

/* ---- main ---- */

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopexit(e2b_envd.base, NULL);
}

/* SIGUSR2: a checkpoint of the sandbox comes (the ns runtime's, with
 * CRIU), which cannot take connections from outside the sandbox along:
 * the host's clients' connections (unix sockets) end here first. */
static void on_checkpoint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    e2b_http_drop_unix_conns(e2b_envd.http);
}

static const struct e2b_opt envd_options[] = { E2B_ENVD_OPTIONS, E2B_OPT_END };

static void usage(FILE *f)
{
    fprintf(f, "usage: envd [options]\n"
               "\n"
               "The E2B guest agent: Connect-RPC process and filesystem services,\n"
               "/files, /health, /init, /envs and /metrics over HTTP/1.1.\n"
               "\n"
               "Options:\n");
    e2b_opt_print_help(f, envd_options, false);
    fprintf(f, "  %-26s  %s\n", "-h, --help", "show this help");
}

/* argv with Go's -name spelled --name (a value after an option that takes
 * one is left alone); the caller frees it. */
static char **go_flags(int argc, char **argv)
{
    char **v = xcalloc((size_t)argc + 1, sizeof(*v));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool single = a[0] == '-' && a[1] && a[1] != '-' && a[2];
        v[i] = single ? xasprintf("-%s", a) : xstrdup(a);
        if (!e2b_str_has_prefix(v[i], "--") || strchr(v[i], '='))
            continue;
        for (const struct e2b_opt *o = envd_options; o->type; o++)
            if (STREQ(o->long_name, v[i] + 2) && e2b_opt_takes_value(o) && i + 1 < argc) {
                i++;
                v[i] = xstrdup(argv[i]);
                break;
            }
    }
    return v;
}

/* A file descriptor number from an option: 0 to 1024, else -2 (said). */
static int fd_option(const struct e2b_args *args, const char *name)
{
    const char *val = e2b_args_str(args, name);
    if (!val)
        return -1;
    char *e;
    long fd = strtol(val, &e, 10);
    if (*e || !*val || fd < 0 || fd > 1024) {
        fprintf(stderr, "envd: bad --%s '%s'\n", name, val);
        return -2;
    }
    return (int)fd;
}

/* The loop, the server (no listeners yet) and the services' state. */
int e2b_envd_serve_init(struct e2b_error **err)
{
    struct event_config *cfg = event_config_new();
    event_config_avoid_method(cfg, "select");
    e2b_envd.base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!e2b_envd.base)
        return e2b_error_set(err, E2B_ERR_GENERIC, "cannot create event loop");
    e2b_envd.http = e2b_http_server_new(e2b_envd.base, handle, NULL);
    /* CORS on every response, errors included, so browser SDKs can read
     * them; the preflight answer is in handle(). */
    e2b_http_server_add_header(e2b_envd.http, "Access-Control-Allow-Origin", "*");
    e2b_http_server_add_header(e2b_envd.http, "Access-Control-Expose-Headers",
                               "Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin, Connect-Content-Encoding, "
                               "Content-Encoding, Content-Disposition, Content-Length, Cache-Control, Location, "
                               "X-Envd-Version");
    if (e2b_process_init(e2b_envd.base, err) < 0 || e2b_watch_init(e2b_envd.base, err) < 0)
        return -1;
    trim_ev = evtimer_new(e2b_envd.base, trim_heap, NULL);
    return 0;
}

int e2b_envd_main(int argc, char **argv)
{
    char **v = go_flags(argc - 1, argv + 1);
    const struct e2b_opt *tables[] = { envd_options, NULL };
    struct e2b_args args;
    _cleanup_error_ struct e2b_error *err = NULL;
    int rc;
    if (e2b_args_parse(&args, tables, argc - 1, v, &err) < 0) {
        fprintf(stderr, "envd: %s\n", err->msg);
        usage(stderr);
        rc = 2;
    } else if (args.help) {
        usage(stdout);
        rc = 0;
    } else {
        rc = e2b_envd_run(&args);
    }
    e2b_args_release(&args);
    e2b_strv_free(v);
    return rc;
}

int e2b_envd_run(const struct e2b_args *args)
{
    if (e2b_args_flag(args, "version")) {
        printf("%s\n", E2B_ENVD_VERSION);
        return 0;
    }
    int port = E2B_ENVD_DEFAULT_PORT;
    const char *val = e2b_args_str(args, "port");
    if (val) {
        char *e;
        long p = strtol(val, &e, 10);
        if (*e || !*val || p < 0 || p > 65535) {
            fprintf(stderr, "envd: bad port '%s'\n", val);
            return 2;
        }
        port = (int)p;
    }
    size_t nlisten;
    const char *const *listens = e2b_args_list(args, "listen", &nlisten);
    if (nlisten > 8) {
        fprintf(stderr, "envd: too many --listen (at most 8)\n");
        return 2;
    }
    int ready_fd = fd_option(args, "ready-fd"), listen_fd = fd_option(args, "listen-fd");
    int init_fd = fd_option(args, "init-fd");
    if (ready_fd == -2 || listen_fd == -2 || init_fd == -2)
        return 2;
    if ((val = e2b_args_str(args, "watcher-idle-timeout"))) {
        char *e;
        long secs = strtol(val, &e, 10);
        if (*e || !*val || secs < 1 || secs > 30L * 86400) {
            fprintf(stderr, "envd: bad --watcher-idle-timeout '%s' (seconds, 1 to 2592000)\n", val);
            return 2;
        }
        e2b_watch_set_idle_timeout((int)secs);
    }
    const char *unix_path = e2b_args_str(args, "unix"), *user = e2b_args_str(args, "user");
    const char *token = e2b_args_str(args, "access-token");
    const char *local_listen = e2b_args_str(args, "local-listen");
    if (local_listen && !strrchr(local_listen, ':')) {
        fprintf(stderr, "envd: --local-listen wants ADDR:PORT, got '%s'\n", local_listen);
        return 2;
    }
    bool no_tcp = e2b_args_flag(args, "no-tcp");
    e2b_envd.sync_clock = e2b_args_flag(args, "sync-clock");
    e2b_envd.verbose = e2b_args_flag(args, "verbose");
    if (no_tcp && !unix_path && listen_fd < 0) {
        fprintf(stderr, "envd: --no-tcp needs --unix or --listen-fd\n");
        return 2;
    }

    /* Root in a sandbox has no CAP_SYS_PTRACE but the same uid and caps as
     * envd, which would let it open /proc/<envd>/mem for writing and take
     * over the agent (and its access token). Not dumpable, envd's /proc
     * files need CAP_SYS_PTRACE; children are dumpable again after exec. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        fprintf(stderr, "envd: warning: cannot make envd undumpable: %s\n", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    umask(022);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* many clients, pipes and watchers */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    e2b_envd.default_user = xstrdup(user ? user : "root");
    e2b_envd.access_token = token && *token ? xstrdup(token) : NULL;
    e2b_envd.env = json_object();
    if (init_fd >= 0 && init_from_fd(init_fd) < 0)
        return 1;

    _cleanup_error_ struct e2b_error *err = NULL;
    int rc = e2b_envd_serve_init(&err);
    if (rc == 0 && !no_tcp) {
        if (nlisten == 0)
            rc = e2b_http_listen_tcp(e2b_envd.http, NULL, port, &err);
        for (size_t i = 0; i < nlisten && rc == 0; i++) {
            const char *colon = strrchr(listens[i], ':');
            if (!colon) {
                fprintf(stderr, "envd: --listen wants ADDR:PORT, got '%s'\n", listens[i]);
                return 2;
            }
            _cleanup_free_ char *host = xstrndup(listens[i], (size_t)(colon - listens[i]));
            size_t hl = strlen(host);
            if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
                memmove(host, host + 1, hl - 2);
                host[hl - 2] = '\0';
            }
            rc = e2b_http_listen_tcp(e2b_envd.http, host, atoi(colon + 1), &err);
        }
    }
    if (rc == 0 && unix_path)
        rc = e2b_http_listen_unix(e2b_envd.http, unix_path, &err);
    if (rc == 0 && listen_fd >= 0) /* close-on-exec from here: not into its processes */
        rc = e2b_http_listen_fd(e2b_envd.http, listen_fd, &err);
    struct e2b_http_server *local = NULL;
    if (rc == 0 && local_listen) {
        local = e2b_http_server_new(e2b_envd.base, handle_local, NULL);
        const char *colon = strrchr(local_listen, ':');
        _cleanup_free_ char *host = xstrndup(local_listen, (size_t)(colon - local_listen));
        rc = e2b_http_listen_tcp(local, host, atoi(colon + 1), &err);
    }
    if (rc < 0) {
        fprintf(stderr, "envd: %s\n", err->msg);
        return 1;
    }
    struct event *sigterm = evsignal_new(e2b_envd.base, SIGTERM, on_term, NULL);
    struct event *sigint = evsignal_new(e2b_envd.base, SIGINT, on_term, NULL);
    struct event *sigusr2 = evsignal_new(e2b_envd.base, SIGUSR2, on_checkpoint, NULL);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(sigusr2, NULL);
    if (ready_fd >= 0) { /* the sandbox's supervisor waits on this, not by polling */
        (void)!write(ready_fd, "r", 1);
        close(ready_fd);
    }
    if (e2b_envd.verbose)
        fprintf(stderr, "envd %s: listening%s%s\n", E2B_ENVD_VERSION, unix_path ? " on " : "",
                unix_path ? unix_path : "");
    event_base_dispatch(e2b_envd.base);

    e2b_process_shutdown();
    if (local)
        e2b_http_server_free(local);
    e2b_http_server_free(e2b_envd.http);
    if (unix_path)
        unlink(unix_path);
    event_free(sigterm);
    event_free(sigint);
    event_free(sigusr2);
    event_free(trim_ev);
    trim_ev = NULL;
    return 0;
}
