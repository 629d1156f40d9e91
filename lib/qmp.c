/* qmp.c - see qmp.h */
#include "qmp.h"
#include "fsutil.h"
#include "strbuf.h"

#include <poll.h>
#include <sys/socket.h>

struct e2b_qmp {
    int fd;
    struct strbuf in;
};

/* The next message (a line), waiting at most until deadline. */
static int read_msg(struct e2b_qmp *q, int64_t deadline, json_t **ret, struct e2b_error **err)
{
    for (;;) {
        char *nl = memchr(q->in.buf, '\n', q->in.len);
        if (nl) {
            size_t n = (size_t)(nl - q->in.buf) + 1;
            int r = e2b_json_parse(q->in.buf, n, "QEMU's QMP message", ret, err);
            strbuf_consume(&q->in, n);
            return r;
        }
        if (q->in.len > (1 << 20))
            return e2b_error_set(err, E2B_ERR_INVALID, "QEMU's QMP message is over 1 MiB");
        int64_t left = deadline - e2b_now_ms();
        struct pollfd p = { .fd = q->fd, .events = POLLIN };
        int pr = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            return e2b_error_set(err, E2B_ERR_TIMEOUT, "QEMU did not answer on QMP");
        char buf[4096];
        ssize_t n = read(q->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return e2b_error_set(err, E2B_ERR_GENERIC, "QEMU closed QMP");
        strbuf_add(&q->in, buf, (size_t)n);
    }
}

int e2b_qmp_open(int fd, int timeout_ms, struct e2b_qmp **ret, struct e2b_error **err)
{
    struct e2b_qmp *q = xcalloc(1, sizeof(*q));
    q->fd = fd;
    strbuf_init(&q->in);
    _cleanup_json_ json_t *greeting = NULL;
    if (read_msg(q, e2b_now_ms() + timeout_ms, &greeting, err) < 0 ||
        e2b_qmp_execute(q, "qmp_capabilities", NULL, timeout_ms, NULL, err) < 0) {
        e2b_qmp_close(q);
        return -1;
    }
    if (!json_object_get(greeting, "QMP")) {
        e2b_qmp_close(q);
        return e2b_error_set(err, E2B_ERR_INVALID, "not QEMU's QMP");
    }
    *ret = q;
    return 0;
}

/* The line, with fd (if >= 0) riding on its first byte. */
static int send_line(int fd, const char *line, size_t n, int pass)
{
    struct iovec iov = { .iov_base = (void *)line, .iov_len = n };
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (pass >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass, sizeof(int));
    }
    ssize_t w;
    while ((w = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (w < 0)
        return -1;
    return (size_t)w == n || e2b_send_all(fd, line + w, n - (size_t)w) == 0 ? 0 : -1;
}

int e2b_qmp_execute(struct e2b_qmp *q, const char *cmd, json_t *args, int timeout_ms, json_t **ret,
                    struct e2b_error **err)
{
    return e2b_qmp_execute_fd(q, cmd, args, -1, timeout_ms, ret, err);
}

int e2b_qmp_execute_fd(struct e2b_qmp *q, const char *cmd, json_t *args, int pass, int timeout_ms,
                       json_t **ret, struct e2b_error **err)
{
    json_t *req = json_pack("{s:s}", "execute", cmd);
    if (args)
        json_object_set(req, "arguments", args);
    _cleanup_free_ char *line = e2b_json_dump(req, 0);
    json_decref(req);
    size_t n = strlen(line);
    line = xrealloc(line, n + 2);
    strcpy(line + n, "\n");
    if (send_line(q->fd, line, n + 1, pass) < 0)
        return e2b_error_sys(err, errno, "cannot send '%s' to QEMU", cmd);
    int64_t deadline = e2b_now_ms() + timeout_ms;
    for (;;) {
        _cleanup_json_ json_t *m = NULL;
        if (read_msg(q, deadline, &m, err) < 0)
            return e2b_error_wrap(err, "QMP '%s'", cmd);
        json_t *e = json_object_get(m, "error");
        if (e)
            return e2b_error_set(err, E2B_ERR_GENERIC, "QEMU refused '%s': %s", cmd,
                                 e2b_json_str(e, "desc") ?: "no reason given");
        json_t *r = json_object_get(m, "return");
        if (!r)
            continue; /* an event */
        if (ret)
            *ret = json_incref(r);
        return 0;
    }
}

void e2b_qmp_close(struct e2b_qmp *q)
{
    if (!q)
        return;
    close(q->fd);
    strbuf_release(&q->in);
    free(q);
}
