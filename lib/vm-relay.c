/* vm-relay.c - see vm-relay.h */
#include "vm-relay.h"
#include "fsutil.h"
#include "json.h"
#include "strbuf.h"
#include "vmlink.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define MAX_PENDING 64 /* ports.sock clients that have not named their port yet */

struct pending {
    int fd;
    size_t len;
    char buf[16];
};

struct e2b_vm_relay {
    char *dir;
    char *config;
    bool config_sent;
    bool suspended; /* SUSPEND sent: no stream until RESUME */
    int ctl_fd;     /* a ports.sock client waiting for SUSPENDED or READY */
    int ctl_wait;   /* which */
    pthread_t thread;
    bool started;
    int stop_efd;
    int envd_listen, ports_listen;
    int console_fd, console_out;
    off_t console_size;
    int log_w;
    int ready_w, ready_r;
    struct e2b_vmlink *link;
    char *link_down; /* why the link ended, once it has */
    struct pending pend[MAX_PENDING];
    size_t npend;
};

/* ---- sockets -------------------------------------------------------------- */

/* "/proc/self/fd/N/name" stands for dir/name whatever dir's length. */
static int unix_addr(const char *dir, const char *name, int *ret_dfd, struct sockaddr_un *un,
                     struct e2b_error **err)
{
    *un = (struct sockaddr_un){ .sun_family = AF_UNIX };
    *ret_dfd = -1;
    if (strlen(dir) + strlen(name) + 2 <= sizeof(un->sun_path) &&
        snprintf(un->sun_path, sizeof(un->sun_path), "%s/%s", dir, name) <
            (int)sizeof(un->sun_path))
        return 0;
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return e2b_error_sys(err, errno, "cannot open %s", dir);
    *ret_dfd = dfd;
    if (snprintf(un->sun_path, sizeof(un->sun_path), "/proc/self/fd/%d/%s", dfd, name) >=
        (int)sizeof(un->sun_path))
        return e2b_error_set(err, E2B_ERR_INVALID, "socket name '%s' is too long", name);
    return 0;
}

int e2b_vm_unix_listen(const char *dir, const char *name, struct e2b_error **err)
{
    struct sockaddr_un un;
    _cleanup_close_ int dfd = -1;
    if (unix_addr(dir, name, &dfd, &un, err) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(un.sun_path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0 || listen(fd, 256) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return e2b_error_sys(err, e, "cannot listen on %s/%s", dir, name);
    }
    return fd;
}

int e2b_vm_unix_connect(const char *dir, const char *name, struct e2b_error **err)
{
    struct sockaddr_un un;
    _cleanup_close_ int dfd = -1;
    if (unix_addr(dir, name, &dfd, &un, err) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return e2b_error_sys(err, e, "cannot connect to %s/%s", dir, name);
    }
    return fd;
}

/* ---- the console ------------------------------------------------------------ */

static void console_open(struct e2b_vm_relay *r)
{
    _cleanup_free_ char *p = e2b_path_join(r->dir, "console.log");
    r->console_out = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    struct stat st;
    r->console_size = r->console_out >= 0 && fstat(r->console_out, &st) == 0 ? st.st_size : 0;
}

/* false at EOF (QEMU is gone) */
static bool console_pump(struct e2b_vm_relay *r)
{
    char buf[16384];
    ssize_t n = read(r->console_fd, buf, sizeof(buf));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0)
        return false;
    if (r->console_size + n > E2B_VM_CONSOLE_MAX) {
        _cleanup_free_ char *p = e2b_path_join(r->dir, "console.log");
        _cleanup_free_ char *old = e2b_path_join(r->dir, "console.log.1");
        if (r->console_out >= 0)
            close(r->console_out);
        rename(p, old);
        console_open(r);
    }
    if (r->console_out >= 0 && write(r->console_out, buf, (size_t)n) == n)
        r->console_size += n;
    return true;
}

/* ---- the link's callbacks ---------------------------------------------------- */

static void ready_done(struct e2b_vm_relay *r, const char *msg, size_t len)
{
    if (r->ready_w < 0)
        return;
    (void)!write(r->ready_w, msg, len);
    close(r->ready_w);
    r->ready_w = -1;
}

/* Tell the control client how it went ("ok", or "error <why>"). */
static void ctl_done(struct e2b_vm_relay *r, const char *why)
{
    if (r->ctl_fd < 0)
        return;
    if (why)
        dprintf(r->ctl_fd, "error %d %s\n", EIO, why);
    else
        dprintf(r->ctl_fd, "ok\n");
    close(r->ctl_fd);
    r->ctl_fd = -1;
    r->ctl_wait = 0;
}

/* RESUME: the CONFIG's settings and the host's clock now. */
static void send_resume(struct e2b_vm_relay *r)
{
    json_t *cfg = NULL;
    if (e2b_json_parse(r->config, strlen(r->config), "CONFIG", &cfg, NULL) < 0)
        cfg = json_object();
    json_object_set_new(cfg, "wallMs", json_integer(e2b_wall_ms()));
    _cleanup_free_ char *m = e2b_json_dump(cfg, 0);
    json_decref(cfg);
    e2b_vmlink_send(r->link, E2B_VMLINK_RESUME, m, strlen(m));
    r->config_sent = true;
}

static int on_message(void *ud, int type, const char *p, size_t len, struct e2b_error **err)
{
    struct e2b_vm_relay *r = ud;
    switch (type) {
    case E2B_VMLINK_SUSPENDED:
        if (r->ctl_wait == E2B_VMLINK_SUSPENDED)
            ctl_done(r, NULL);
        break;
    case E2B_VMLINK_HELLO: /* once: a guest saying it again gets nothing to pile up */
        if (!r->config_sent)
            e2b_vmlink_send(r->link, E2B_VMLINK_CONFIG, r->config, strlen(r->config));
        r->config_sent = true;
        break;
    case E2B_VMLINK_READY:
        if (r->ctl_wait == E2B_VMLINK_READY) {
            _cleanup_free_ char *why = len ? xstrndup(p, len) : NULL;
            if (!why)
                r->suspended = false;
            ctl_done(r, why);
        }
        ready_done(r, len ? p : "", len);
        break;
    case E2B_VMLINK_LOG:
        (void)!write(r->log_w, p, len); /* a full log pipe drops it, never blocks the relay */
        break;
    }
    return 0;
}

static void on_open_failed(void *ud, int fd, uint32_t port, int errnum, const char *reason)
{
    if (port == E2B_VMLINK_PORT_ENVD) {
        _cleanup_free_ char *body = xasprintf("envd in the VM is not listening: %s\n", reason);
        dprintf(fd,
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                "Connection: close\r\n\r\n%s",
                strlen(body), body);
    } else {
        dprintf(fd, "error %d %s\n", errnum, reason);
    }
    close(fd);
}

static const struct e2b_vmlink_ops link_ops = { .message = on_message,
                                                .open_failed = on_open_failed };

/* QEMU is gone (or broke the protocol): nobody gets in from here. */
static void link_down(struct e2b_vm_relay *r, const char *why)
{
    r->link_down = xstrdup(why);
    e2b_vmlink_free(r->link);
    r->link = NULL;
    _cleanup_free_ char *m = xasprintf("the link to the VM ended: %s", why);
    ready_done(r, m, strlen(m));
    ctl_done(r, m);
    for (size_t i = 0; i < r->npend; i++)
        close(r->pend[i].fd);
    r->npend = 0;
    close(r->envd_listen), close(r->ports_listen);
    r->envd_listen = r->ports_listen = -1;
}

/* ---- the thread -------------------------------------------------------------- */

static void accept_all(struct e2b_vm_relay *r, int lfd, bool envd)
{
    int fd;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
        if (envd) {
            e2b_vmlink_open(r->link, E2B_VMLINK_PORT_ENVD, fd, NULL);
            continue;
        }
        if (r->npend == MAX_PENDING) { /* the oldest waited long enough */
            close(r->pend[0].fd);
            memmove(&r->pend[0], &r->pend[1], --r->npend * sizeof(r->pend[0]));
        }
        r->pend[r->npend++] = (struct pending){ .fd = fd };
    }
}

/* A ports.sock client named its port (or went away): false to drop it. */
static bool pending_read(struct e2b_vm_relay *r, struct pending *pd)
{
    ssize_t n = read(pd->fd, pd->buf + pd->len, sizeof(pd->buf) - 1 - pd->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (n <= 0)
        return false;
    pd->len += (size_t)n;
    pd->buf[pd->len] = '\0';
    char *nl = strchr(pd->buf, '\n');
    if (!nl)
        return pd->len < sizeof(pd->buf) - 1;
    *nl = '\0';
    if (STREQ(pd->buf, "suspend") || STREQ(pd->buf, "resume")) {
        bool suspend = STREQ(pd->buf, "suspend");
        if (r->ctl_fd >= 0) {
            dprintf(pd->fd, "error %d the VM is being paused or resumed\n", EBUSY);
            return false;
        }
        if (suspend == r->suspended) { /* already so */
            dprintf(pd->fd, "ok\n");
            return false;
        }
        r->ctl_fd = TAKE_FD(pd->fd);
        if (suspend) { /* nothing more from here: the streams go now */
            e2b_vmlink_send(r->link, E2B_VMLINK_SUSPEND, "", 0);
            e2b_vmlink_reset(r->link);
            r->suspended = true;
            r->ctl_wait = E2B_VMLINK_SUSPENDED;
        } else {
            send_resume(r);
            r->ctl_wait = E2B_VMLINK_READY;
        }
        return false;
    }
    *nl = '\n';
    if (r->suspended) {
        dprintf(pd->fd, "error %d the VM is paused\n", EAGAIN);
        return false;
    }
    char *end;
    long port = strtol(pd->buf, &end, 10);
    if (end != nl || port < 1 || port > 65535 || nl[1]) {
        dprintf(pd->fd, "error %d bad port\n", EINVAL);
        return false;
    }
    e2b_vmlink_open(r->link, (uint32_t)port, pd->fd, "ok\n");
    pd->fd = -1; /* the link's */
    return false;
}

static void *relay_main(void *ud)
{
    struct e2b_vm_relay *r = ud;
    int64_t stop_at = 0;
    for (;;) {
        struct pollfd ex[4 + MAX_PENDING];
        size_t n = 0;
        ex[n++] = (struct pollfd){ .fd = stop_at ? -1 : r->stop_efd, .events = POLLIN };
        ex[n++] = (struct pollfd){ .fd = r->suspended ? -1 : r->envd_listen, .events = POLLIN };
        ex[n++] = (struct pollfd){ .fd = r->ports_listen, .events = POLLIN };
        ex[n++] = (struct pollfd){ .fd = r->console_fd, .events = POLLIN };
        for (size_t i = 0; i < r->npend; i++)
            ex[n++] = (struct pollfd){ .fd = r->pend[i].fd, .events = POLLIN };
        int timeout = -1;
        if (stop_at) { /* the console's last words, once QEMU has gone */
            int64_t left = stop_at - e2b_now_ms();
            if (r->console_fd < 0 || left <= 0)
                break;
            timeout = (int)left;
        }
        if (r->link) {
            _cleanup_error_ struct e2b_error *err = NULL;
            if (e2b_vmlink_poll(r->link, ex, n, timeout, &err) < 0) {
                link_down(r, err->msg);
                continue;
            }
        } else if (poll(ex, n, timeout) < 0) {
            continue;
        }
        if (ex[0].revents & POLLIN) {
            stop_at = e2b_now_ms() + 1000;
            if (r->link)
                link_down(r, "the sandbox is stopping");
        }
        if (ex[3].revents && !console_pump(r)) {
            close(r->console_fd);
            r->console_fd = -1;
        }
        size_t w = 0;
        for (size_t i = 0; i < r->npend; i++) {
            struct pending *pd = &r->pend[i];
            if (ex[4 + i].revents && !pending_read(r, pd)) {
                if (pd->fd >= 0)
                    close(pd->fd);
                continue;
            }
            r->pend[w++] = *pd;
        }
        r->npend = w;
        if (r->link && !r->suspended && (ex[1].revents & POLLIN))
            accept_all(r, r->envd_listen, true);
        if (r->link && (ex[2].revents & POLLIN))
            accept_all(r, r->ports_listen, false);
    }
    return NULL;
}

int e2b_vm_relay_start(const struct e2b_vm_relay_opts *o, struct e2b_vm_relay **ret,
                       int *ret_log_fd, struct e2b_error **err)
{
    struct e2b_vm_relay *r = xcalloc(1, sizeof(*r));
    r->dir = xstrdup(o->dir);
    r->config = xstrdup(o->config);
    r->console_fd = o->console_fd;
    r->stop_efd = r->log_w = r->ready_w = r->ready_r = r->ports_listen = r->console_out = -1;
    r->ctl_fd = -1;
    r->link = e2b_vmlink_new(o->link_fd, &link_ops, r);
    if (o->resume) /* a guest restored from a save: it said HELLO long ago */
        send_resume(r);
    console_open(r);
    int lp[2] = { -1, -1 }, rp[2] = { -1, -1 };
    r->envd_listen = e2b_vm_unix_listen(o->dir, "envd.sock", err);
    if (r->envd_listen < 0 || (r->ports_listen = e2b_vm_unix_listen(o->dir, "ports.sock", err)) < 0)
        goto fail;
    fcntl(r->envd_listen, F_SETFL, O_NONBLOCK);
    fcntl(r->ports_listen, F_SETFL, O_NONBLOCK);
    r->stop_efd = eventfd(0, EFD_CLOEXEC);
    if (r->stop_efd < 0 || pipe2(lp, O_CLOEXEC) < 0 || pipe2(rp, O_CLOEXEC) < 0) {
        e2b_error_sys(err, errno, "cannot start the VM's relay");
        goto fail;
    }
    r->log_w = lp[1];
    fcntl(r->log_w, F_SETFL, O_NONBLOCK);
    r->ready_r = rp[0];
    r->ready_w = rp[1];
    /* a small stack: the thread only moves bytes */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    int e = pthread_create(&r->thread, &attr, relay_main, r);
    pthread_attr_destroy(&attr);
    if (e) {
        e2b_error_sys(err, e, "cannot start the VM's relay");
        goto fail;
    }
    r->started = true;
    *ret = r;
    *ret_log_fd = lp[0];
    return 0;
fail:
    if (lp[0] >= 0)
        close(lp[0]);
    e2b_vm_relay_stop(r);
    return -1;
}

int e2b_vm_relay_wait_ready(struct e2b_vm_relay *r, int stop_fd, int timeout_ms,
                            struct e2b_error **err)
{
    int64_t deadline = e2b_now_ms() + timeout_ms;
    _cleanup_strbuf_ struct strbuf msg = STRBUF_INIT;
    for (;;) {
        struct pollfd p[2] = { { .fd = r->ready_r, .events = POLLIN },
                               { .fd = stop_fd, .events = POLLIN } };
        int64_t left = deadline - e2b_now_ms();
        if (left <= 0)
            return e2b_error_set(err, E2B_ERR_TIMEOUT, "envd in the VM did not answer within %d s",
                                 timeout_ms / 1000);
        int n = poll(p, 2, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return e2b_error_sys(err, errno, "cannot wait for the VM");
        if (p[0].revents) {
            char buf[1024];
            ssize_t m = read(r->ready_r, buf, sizeof(buf));
            if (m < 0 && errno == EINTR)
                continue;
            if (m > 0) {
                strbuf_add(&msg, buf, (size_t)m);
                continue;
            }
            /* EOF: the whole word is in */
            if (msg.len == 0)
                return 0;
            strbuf_rtrim(&msg);
            return e2b_error_set(err, E2B_ERR_GENERIC, "%s", msg.buf);
        }
        if (p[1].revents)
            return e2b_error_set(err, E2B_ERR_CANCELLED, "QEMU exited while the VM started");
    }
}

void e2b_vm_relay_stop(struct e2b_vm_relay *r)
{
    if (!r)
        return;
    if (r->started) {
        uint64_t one = 1;
        (void)!write(r->stop_efd, &one, sizeof(one));
        pthread_join(r->thread, NULL);
    }
    e2b_vmlink_free(r->link);
    for (size_t i = 0; i < r->npend; i++)
        close(r->pend[i].fd);
    if (r->ctl_fd >= 0)
        close(r->ctl_fd);
    int fds[] = { r->stop_efd,    r->envd_listen, r->ports_listen, r->console_fd,
                  r->console_out, r->log_w,       r->ready_w,      r->ready_r };
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(r->link_down);
    free(r->config);
    free(r->dir);
    free(r);
}

/* Ask ports.sock: write req, read the answer's line (a byte at a time: what
 * follows it is the connection's) into line. */
static int ports_ask(const char *dir, const char *req, const char *what, int timeout_ms,
                     int *ret_fd, char *line, size_t size, struct e2b_error **err)
{
    _cleanup_close_ int fd = e2b_vm_unix_connect(dir, "ports.sock", err);
    if (fd < 0)
        return -1;
    size_t n = strlen(req);
    if (write(fd, req, n) != (ssize_t)n)
        return e2b_error_sys(err, errno, "cannot reach %s of the VM", what);
    size_t len = 0;
    int64_t deadline = e2b_now_ms() + timeout_ms;
    while (len < size - 1) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int64_t left = deadline - e2b_now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) == 0)
            return e2b_error_set(err, E2B_ERR_TIMEOUT, "the VM did not answer for %s", what);
        ssize_t m = read(fd, line + len, 1);
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0)
            return e2b_error_set(err, E2B_ERR_NETWORK, "the VM closed the connection for %s", what);
        if (line[len++] == '\n')
            break;
    }
    line[len] = '\0';
    line[strcspn(line, "\n")] = '\0';
    *ret_fd = TAKE_FD(fd);
    return 0;
}

int e2b_vm_link_control(const char *dir, const char *what, int timeout_ms, struct e2b_error **err)
{
    char line[1024];
    _cleanup_free_ char *req = xasprintf("%s\n", what);
    _cleanup_close_ int fd = -1;
    if (ports_ask(dir, req, "the link", timeout_ms, &fd, line, sizeof(line), err) < 0)
        return -1;
    if (STREQ(line, "ok"))
        return 0;
    const char *reason = line;
    int e = 0, off = 0;
    if (sscanf(line, "error %d %n", &e, &off) == 1 && off > 0)
        reason = line + off;
    return e2b_error_set(err, E2B_ERR_GENERIC, "cannot %s the VM's link: %s", what, reason);
}

int e2b_vm_port_connect(const char *dir, int port, int *ret_fd, struct e2b_error **err)
{
    char line[300], req[32], what[32];
    snprintf(req, sizeof(req), "%d\n", port);
    snprintf(what, sizeof(what), "port %d", port);
    _cleanup_close_ int fd = -1;
    if (ports_ask(dir, req, what, 10000, &fd, line, sizeof(line), err) < 0)
        return -1;
    if (STREQ(line, "ok")) {
        *ret_fd = TAKE_FD(fd);
        return 0;
    }
    int e = 0;
    char *reason = NULL;
    if (sscanf(line, "error %d", &e) == 1 && (reason = strchr(line + 6, ' ')))
        reason++;
    if (e == ECONNREFUSED)
        return e2b_error_set(err, E2B_ERR_NETWORK, "nothing listens on port %d", port);
    return e2b_error_set(err, E2B_ERR_NETWORK, "cannot connect to port %d: %s", port,
                         reason ? reason : line);
}
