/* envd-jupyter.c - see envd-jupyter.h (jupyter-client.readthedocs.io, "Messaging in Jupyter"). */
#include "envd-jupyter.h"
#include "envd-crypto.h"
#include "envd-zmtp.h"
#include "fsutil.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#define DELIM                "<IDS|MSG>"
#define KERNEL_INFO_RETRY_MS 200
#define HB_INTERVAL_S        5

extern char **environ;

enum chan { CH_SHELL, CH_IOPUB, CH_STDIN, CH_CONTROL, CH_HB, N_CHAN };

struct e2b_kernel;

struct chan_ref {
    struct e2b_kernel *k;
    enum chan ch;
};

struct e2b_kernel {
    struct e2b_kernel *next; /* all running kernels, for SIGCHLD */
    pid_t pid;
    bool exited, ready, info_seen_shell, info_seen_iopub, interrupt_message;
    int status;
    char *dir; /* private directory of the connection file */
    char *conn_file;
    uint8_t key[32];
    char key_hex[65];
    char *session;
    struct e2b_zmtp *z[N_CHAN];
    struct chan_ref refs[N_CHAN];
    struct e2b_kernel_events ev;
    struct event *info_timer, *kill_timer, *hb_timer;
    char **info_ids; /* kernel_info_request msg_ids sent */
    char *last_msg_id;
    int64_t hb_sent_ms, hb_echo_ms;
};

static struct event_base *kbase;
static struct event *sigchld_ev;
static struct e2b_kernel *kernels;

/* ---- small things ---- */

char *e2b_uuid4(void)
{
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
        /* no entropy yet at boot: time and pid are enough for an id (not the key) */
        uint64_t t = (uint64_t)e2b_now_ms() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)(i * 37);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                     b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                     b[13], b[14], b[15]);
}

static char *iso_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%06ldZ", ts.tv_nsec / 1000);
    return xstrdup(buf);
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- kernel specs ---- */

void e2b_kernelspec_free(struct e2b_kernelspec *ks)
{
    if (!ks)
        return;
    free(ks->name);
    free(ks->dir);
    e2b_strv_free(ks->argv);
    free(ks->language);
    free(ks->display_name);
    json_decref(ks->env);
    free(ks);
}

static char **kernelspec_dirs(void)
{
    char **v = NULL;
    const char *jp = getenv("JUPYTER_PATH");
    if (jp && *jp) {
        _cleanup_free_ char *copy = xstrdup(jp);
        char *save = NULL;
        for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
            _cleanup_free_ char *d = e2b_path_join(p, "kernels");
            v = e2b_strv_push(v, d);
        }
    }
    const char *data = getenv("JUPYTER_DATA_DIR"), *home = getenv("HOME");
    if (data && *data) {
        _cleanup_free_ char *d = e2b_path_join(data, "kernels");
        v = e2b_strv_push(v, d);
    } else if (home && *home) {
        _cleanup_free_ char *d = e2b_path_join(home, ".local/share/jupyter/kernels");
        v = e2b_strv_push(v, d);
    }
    v = e2b_strv_push(v, "/usr/local/share/jupyter/kernels");
    v = e2b_strv_push(v, "/usr/share/jupyter/kernels");
    return v;
}

static bool name_ok(const char *s)
{
    if (!*s || strlen(s) > 64 || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

int e2b_kernelspec_find(const char *name, struct e2b_kernelspec **ret, struct e2b_error **err)
{
    if (!name_ok(name))
        return e2b_error_set(err, E2B_ERR_INVALID, "'%s' is not a kernel name", name);
    _cleanup_strv_ char **dirs = kernelspec_dirs();
    for (char **d = dirs; *d; d++) {
        _cleanup_free_ char *kdir = e2b_path_join(*d, name);
        _cleanup_free_ char *file = e2b_path_join(kdir, "kernel.json");
        if (access(file, R_OK) != 0)
            continue;
        _cleanup_json_ json_t *j = NULL;
        if (e2b_json_load_file(file, &j, err) < 0)
            return -1;
        json_t *argv = json_object_get(j, "argv");
        if (!json_is_array(argv) || json_array_size(argv) == 0)
            return e2b_error_set(err, E2B_ERR_INVALID, "%s: no argv", file);
        struct e2b_kernelspec *ks = xcalloc(1, sizeof(*ks));
        size_t i;
        json_t *a;
        json_array_foreach(argv, i, a) {
            if (!json_is_string(a)) {
                e2b_kernelspec_free(ks);
                return e2b_error_set(err, E2B_ERR_INVALID, "%s: argv[%zu] is not a string", file,
                                     i);
            }
            ks->argv = e2b_strv_push(ks->argv, json_string_value(a));
        }
        ks->name = xstrdup(name);
        ks->dir = TAKE_PTR(kdir);
        ks->language = xstrdup(e2b_json_str(j, "language") ?: name);
        ks->display_name = xstrdup(e2b_json_str(j, "display_name") ?: name);
        json_t *env = json_object_get(j, "env");
        ks->env = json_is_object(env) ? json_incref(env) : NULL;
        const char *im = e2b_json_str(j, "interrupt_mode");
        ks->interrupt_message = im && STREQ(im, "message");
        *ret = ks;
        return 0;
    }
    return e2b_error_set(err, E2B_ERR_NOT_FOUND, "no Jupyter kernel named '%s'", name);
}

/* ---- messages ---- */

static void sign(const struct e2b_kernel *k, const char *const parts[4], char out[65])
{
    struct e2b_hmac_sha256 h;
    e2b_hmac_sha256_init(&h, k->key_hex, 64);
    for (int i = 0; i < 4; i++)
        e2b_hmac_sha256_update(&h, parts[i], strlen(parts[i]));
    uint8_t mac[32];
    e2b_hmac_sha256_final(&h, mac);
    hex(mac, sizeof(mac), out);
}

/* Send a message; returns its msg_id (owned by k until the next send). */
static const char *send_msg(struct e2b_kernel *k, enum chan ch, const char *type, json_t *content)
{
    _cleanup_free_ char *id = e2b_uuid4(), *date = iso_now();
    json_t *header =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "msg_id", id, "username", "e2b", "session",
                  k->session, "msg_type", type, "version", "5.3", "date", date);
    _cleanup_free_ char *h = e2b_json_dump(header, JSON_COMPACT);
    json_decref(header);
    _cleanup_free_ char *c = e2b_json_dump(content, JSON_COMPACT);
    json_decref(content);
    const char *parts[4] = { h, "{}", "{}", c };
    char sig[65];
    sign(k, parts, sig);
    struct iovec f[6] = {
        { DELIM, strlen(DELIM) }, { sig, 64 }, { h, strlen(h) }, { "{}", 2 }, { "{}", 2 },
        { c, strlen(c) }
    };
    e2b_zmtp_send(k->z[ch], f, ARRAY_SIZE(f));
    free(k->last_msg_id);
    k->last_msg_id = TAKE_PTR(id);
    return k->last_msg_id;
}

static void send_kernel_info(struct e2b_kernel *k)
{
    const char *id = send_msg(k, CH_SHELL, "kernel_info_request", json_object());
    k->info_ids = e2b_strv_push(k->info_ids, id);
}

static bool is_info_id(const struct e2b_kernel *k, const char *id)
{
    for (char **p = k->info_ids; id && p && *p; p++)
        if (STREQ(*p, id))
            return true;
    return false;
}

static void check_ready(struct e2b_kernel *k)
{
    if (k->ready || !k->info_seen_shell || !k->info_seen_iopub)
        return;
    k->ready = true;
    event_del(k->info_timer);
    if (k->ev.on_ready)
        k->ev.on_ready(k, k->ev.arg);
}

/* {header, parent_header, metadata, content} from a message's four parts,
 * or NULL when it is not signed right or a part is not a JSON object. */
static json_t *parse_parts(char *const parts[4], bool signed_ok)
{
    if (!signed_ok)
        return NULL;
    json_t *msg = json_object();
    static const char *const names[4] = { "header", "parent_header", "metadata", "content" };
    for (int i = 0; i < 4; i++) {
        json_t *v = json_loads(parts[i], 0, NULL);
        if (!json_is_object(v)) {
            json_decref(v);
            json_decref(msg);
            return NULL;
        }
        json_object_set_new(msg, names[i], v);
    }
    return msg;
}

static void on_frames(struct e2b_zmtp *z, const struct e2b_zmtp_frame *f, size_t n, void *arg)
{
    (void)z;
    struct chan_ref *ref = arg;
    struct e2b_kernel *k = ref->k;
    if (ref->ch == CH_HB) {
        k->hb_echo_ms = e2b_now_ms();
        return;
    }
    size_t d = 0;
    while (d < n && !(f[d].len == strlen(DELIM) && memcmp(f[d].data, DELIM, f[d].len) == 0))
        d++;
    if (n < d + 6) /* delimiter, signature and the four parts */
        return;
    char *parts[4];
    for (int i = 0; i < 4; i++)
        parts[i] = xstrndup((const char *)f[d + 2 + i].data, f[d + 2 + i].len);
    char want[65];
    sign(k, (const char *const *)parts, want);
    _cleanup_free_ char *got = xstrndup((const char *)f[d + 1].data, f[d + 1].len);
    json_t *msg = parse_parts(parts, e2b_consttime_streq(got, want));
    for (int i = 0; i < 4; i++)
        free(parts[i]);
    if (!msg) {
        fprintf(stderr,
                "code-interpreter: dropped a badly signed or malformed message from kernel %d\n",
                (int)k->pid);
        return;
    }
    const char *type = e2b_json_str(json_object_get(msg, "header"), "msg_type");
    const char *parent = e2b_json_str(json_object_get(msg, "parent_header"), "msg_id");
    if (!k->ready && is_info_id(k, parent)) {
        if (ref->ch == CH_SHELL && type && STREQ(type, "kernel_info_reply"))
            k->info_seen_shell = true;
        if (ref->ch == CH_IOPUB)
            k->info_seen_iopub = true;
        check_ready(k);
    } else if (ref->ch == CH_IOPUB && k->ev.on_iopub) {
        k->ev.on_iopub(k, msg, k->ev.arg);
    } else if (ref->ch == CH_SHELL && k->ev.on_shell) {
        k->ev.on_shell(k, msg, k->ev.arg);
    }
    json_decref(msg);
}

static void info_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct e2b_kernel *k = arg;
    if (k->ready || k->exited)
        return;
    if (e2b_zmtp_ready(k->z[CH_SHELL]) && e2b_strv_len(k->info_ids) < 600)
        send_kernel_info(k);
    struct timeval tv = { 0, KERNEL_INFO_RETRY_MS * 1000 };
    event_add(k->info_timer, &tv);
}

static void hb_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct e2b_kernel *k = arg;
    /* one ping in flight at a time, as a REQ socket allows */
    if (e2b_zmtp_ready(k->z[CH_HB]) && (k->hb_sent_ms == 0 || k->hb_echo_ms >= k->hb_sent_ms)) {
        struct iovec f = { "ping", 4 };
        e2b_zmtp_send(k->z[CH_HB], &f, 1);
        k->hb_sent_ms = e2b_now_ms();
    }
    struct timeval tv = { HB_INTERVAL_S, 0 };
    event_add(k->hb_timer, &tv);
}

/* ---- processes ---- */

static void reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (struct e2b_kernel **pp = &kernels; *pp; pp = &(*pp)->next) {
            struct e2b_kernel *k = *pp;
            if (k->pid != pid)
                continue;
            *pp = k->next;
            k->next = NULL;
            k->exited = true;
            k->status = status;
            kill(-pid, SIGKILL); /* what it started dies with it */
            event_del(k->info_timer);
            if (k->kill_timer)
                event_del(k->kill_timer);
            event_del(k->hb_timer);
            if (k->ev.on_exit)
                k->ev.on_exit(k, status, k->ev.arg);
            break;
        }
    }
}

int e2b_kernels_init(struct event_base *base, struct e2b_error **err)
{
    kbase = base;
    sigchld_ev = evsignal_new(base, SIGCHLD, reap, NULL);
    if (!sigchld_ev || event_add(sigchld_ev, NULL) < 0)
        return e2b_error_set(err, E2B_ERR_GENERIC, "cannot watch for kernels' exits");
    return 0;
}

/* Five ports free on loopback now (bound together, so they differ). */
static int free_ports(int ports[N_CHAN], struct e2b_error **err)
{
    int fds[N_CHAN];
    int r = 0;
    for (int i = 0; i < N_CHAN; i++)
        fds[i] = -1;
    for (int i = 0; i < N_CHAN && r == 0; i++) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(a);
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &l) < 0)
            r = e2b_error_sys(err, errno, "cannot find free ports for a kernel");
        else
            ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < N_CHAN; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return r;
}

static char *expand_arg(const char *a, const char *conn, const char *resdir)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    while (*a) {
        if (e2b_str_has_prefix(a, "{connection_file}")) {
            strbuf_addstr(&sb, conn);
            a += strlen("{connection_file}");
        } else if (e2b_str_has_prefix(a, "{resource_dir}")) {
            strbuf_addstr(&sb, resdir);
            a += strlen("{resource_dir}");
        } else {
            strbuf_addch(&sb, *a++);
        }
    }
    return strbuf_detach(&sb, NULL);
}

static char **kernel_env(const struct e2b_kernelspec *ks, const json_t *extra)
{
    _cleanup_json_ json_t *m = json_object();
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        _cleanup_free_ char *k = xstrndup(*e, (size_t)(eq - *e));
        json_object_set_new(m, k, json_string(eq + 1));
    }
    /* ipykernel's debugger warns on stderr at every start without it */
    if (!json_object_get(m, "PYDEVD_DISABLE_FILE_VALIDATION"))
        json_object_set_new(m, "PYDEVD_DISABLE_FILE_VALIDATION", json_string("1"));
    const char *k;
    json_t *v;
    if (ks->env)
        json_object_foreach((json_t *)ks->env, k, v)
            if (json_is_string(v))
                json_object_set(m, k, v);
    if (extra)
        json_object_foreach((json_t *)extra, k, v)
            if (json_is_string(v))
                json_object_set(m, k, v);
    char **env = NULL;
    json_object_foreach(m, k, v) {
        _cleanup_free_ char *e = xasprintf("%s=%s", k, json_string_value(v) ?: "");
        env = e2b_strv_push(env, e);
    }
    return env ? env : e2b_strv_push(NULL, "PATH=/usr/local/bin:/usr/bin:/bin");
}

static const char *runtime_base(void)
{
    const char *x = getenv("XDG_RUNTIME_DIR");
    if (x && *x && access(x, W_OK) == 0)
        return x;
    x = getenv("TMPDIR");
    return x && *x ? x : "/tmp";
}

int e2b_kernel_start(const struct e2b_kernelspec *ks, const char *cwd, const json_t *env,
                     const struct e2b_kernel_events *ev, struct e2b_kernel **ret,
                     struct e2b_error **err)
{
    if (!kbase)
        return e2b_error_set(err, E2B_ERR_GENERIC, "kernels: e2b_kernels_init was not called");
    int ports[N_CHAN];
    if (free_ports(ports, err) < 0)
        return -1;
    struct e2b_kernel *k = xcalloc(1, sizeof(*k));
    k->ev = *ev;
    k->session = e2b_uuid4();
    k->interrupt_message = ks->interrupt_message;
    if (getrandom(k->key, sizeof(k->key), 0) != sizeof(k->key)) {
        free(k->session);
        free(k);
        return e2b_error_sys(err, errno, "cannot make a kernel key");
    }
    hex(k->key, sizeof(k->key), k->key_hex);
    k->dir = xasprintf("%s/e2b-kernel-XXXXXX", runtime_base());
    if (!mkdtemp(k->dir)) {
        int e = errno;
        free(k->session);
        free(k->dir);
        free(k);
        return e2b_error_sys(err, e, "cannot make a directory for a kernel's connection file");
    }
    k->conn_file = e2b_path_join(k->dir, "kernel.json");
    json_t *conn =
        json_pack("{s:i,s:i,s:i,s:i,s:i,s:s,s:s,s:s,s:s,s:s}", "shell_port", ports[CH_SHELL],
                  "iopub_port", ports[CH_IOPUB], "stdin_port", ports[CH_STDIN], "control_port",
                  ports[CH_CONTROL], "hb_port", ports[CH_HB], "ip", "127.0.0.1", "key", k->key_hex,
                  "transport", "tcp", "signature_scheme", "hmac-sha256", "kernel_name", ks->name);
    int r = e2b_json_save_file(k->conn_file, conn, 0600, err);
    json_decref(conn);
    if (r < 0) {
        e2b_kernel_free(k);
        return -1;
    }

    char **argv = NULL;
    for (char **a = ks->argv; *a; a++) {
        _cleanup_free_ char *x = expand_arg(*a, k->conn_file, ks->dir);
        argv = e2b_strv_push(argv, x);
    }
    char **envp = kernel_env(ks, env);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        e2b_strv_free(argv);
        e2b_strv_free(envp);
        e2b_kernel_free(k);
        return e2b_error_sys(err, errno, "cannot start kernel '%s'", ks->name);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        setsid();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0 && null != 0) {
            dup2(null, 0);
            close(null);
        }
        if (cwd && chdir(cwd) < 0) {
            int e = errno;
            (void)!write(pfd[1], &e, sizeof(e));
            _exit(127);
        }
        execvpe(argv[0], argv, envp);
        int e = errno;
        (void)!write(pfd[1], &e, sizeof(e));
        _exit(127);
    }
    int fork_errno = errno;
    close(pfd[1]);
    int child_errno = 0;
    ssize_t got = pid > 0 ? read(pfd[0], &child_errno, sizeof(child_errno)) : 0;
    close(pfd[0]);
    if (pid < 0 || got > 0) {
        if (pid > 0)
            waitpid(pid, NULL, 0);
        int e = pid < 0 ? fork_errno : child_errno;
        r = got > 0 && cwd && e == ENOENT && access(cwd, F_OK) != 0
                ? e2b_error_sys(err, e, "cannot start kernel '%s' in '%s'", ks->name, cwd)
                : e2b_error_sys(err, e, "cannot start kernel '%s' (%s)", ks->name, argv[0]);
        e2b_strv_free(argv);
        e2b_strv_free(envp);
        e2b_kernel_free(k);
        return r;
    }
    e2b_strv_free(argv);
    e2b_strv_free(envp);
    k->pid = pid;
    k->next = kernels;
    kernels = k;

    static const enum e2b_zmtp_type types[N_CHAN] = { E2B_ZMTP_DEALER, E2B_ZMTP_SUB,
                                                      E2B_ZMTP_DEALER, E2B_ZMTP_DEALER,
                                                      E2B_ZMTP_REQ };
    for (int i = 0; i < N_CHAN; i++) {
        k->refs[i] = (struct chan_ref){ k, (enum chan)i };
        /* shell and stdin share an identity: input_request finds its way */
        k->z[i] = e2b_zmtp_new(kbase, types[i], i == CH_SHELL || i == CH_STDIN ? k->session : NULL,
                               on_frames, &k->refs[i]);
        _cleanup_free_ char *ep = xasprintf("tcp://127.0.0.1:%d", ports[i]);
        if (e2b_zmtp_connect(k->z[i], ep, err) < 0) {
            e2b_kernel_free(k);
            return -1;
        }
    }
    k->info_timer = evtimer_new(kbase, info_tick, k);
    k->hb_timer = evtimer_new(kbase, hb_tick, k);
    struct timeval now = { 0, 0 };
    event_add(k->info_timer, &now);
    struct timeval hb = { 1, 0 };
    event_add(k->hb_timer, &hb);
    *ret = k;
    return 0;
}

int e2b_kernel_pid(const struct e2b_kernel *k) { return (int)k->pid; }

const char *e2b_kernel_execute(struct e2b_kernel *k, const char *code, bool silent,
                               bool store_history)
{
    /* stop_on_error false: executions are one at a time here, and with it
     * true ipykernel aborts whatever request comes in for a while after an
     * error (an interrupt's KeyboardInterrupt, say): the next client's code */
    json_t *c =
        json_pack("{s:s,s:b,s:b,s:{},s:b,s:b}", "code", code, "silent", silent, "store_history",
                  store_history, "user_expressions", "allow_stdin", 0, "stop_on_error", 0);
    return send_msg(k, CH_SHELL, "execute_request", c);
}

void e2b_kernel_interrupt(struct e2b_kernel *k)
{
    if (k->exited)
        return;
    if (k->interrupt_message)
        send_msg(k, CH_CONTROL, "interrupt_request", json_object());
    else
        kill(-k->pid, SIGINT);
}

static void kernel_kill(struct e2b_kernel *k)
{
    if (!k->exited && k->pid > 0)
        kill(-k->pid, SIGKILL);
}

static void kill_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kernel_kill(arg);
}

void e2b_kernel_shutdown(struct e2b_kernel *k, int grace_ms)
{
    if (k->exited)
        return;
    send_msg(k, CH_CONTROL, "shutdown_request", json_pack("{s:b}", "restart", 0));
    if (!k->kill_timer)
        k->kill_timer = evtimer_new(kbase, kill_tick, k);
    struct timeval tv = { grace_ms / 1000, (grace_ms % 1000) * 1000 };
    event_add(k->kill_timer, &tv);
}

void e2b_kernel_free(struct e2b_kernel *k)
{
    if (!k)
        return;
    if (!k->exited && k->pid > 0) {
        kill(-k->pid, SIGKILL);
        for (struct e2b_kernel **pp = &kernels; *pp; pp = &(*pp)->next)
            if (*pp == k) {
                *pp = k->next;
                break;
            }
        /* reaped by the SIGCHLD handler, which no longer knows it */
    }
    for (int i = 0; i < N_CHAN; i++)
        e2b_zmtp_free(k->z[i]);
    if (k->info_timer)
        event_free(k->info_timer);
    if (k->kill_timer)
        event_free(k->kill_timer);
    if (k->hb_timer)
        event_free(k->hb_timer);
    if (k->conn_file)
        unlink(k->conn_file);
    if (k->dir)
        rmdir(k->dir);
    free(k->conn_file);
    free(k->dir);
    free(k->session);
    free(k->last_msg_id);
    e2b_strv_free(k->info_ids);
    explicit_bzero(k->key_hex, sizeof(k->key_hex));
    free(k);
}
