/* serve-cluster.c - see serve-cluster.h */
#include "serve-cluster.h"
#include "backend-cluster.h"
#include "cluster.h"
#include "config.h"
#include "fsutil.h"
#include "template-transfer.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>

int e2b_serve_cluster_start(struct e2b_serve_opts *o, struct e2b_error **err)
{
    struct e2b_cluster_opts co = {
        .url = o->cluster_url,
        .node_id = o->node_id,
        .address = o->node_address,
        .secret = o->cluster_secret,
        .secret_len = o->cluster_secret_len,
        .lease_ms = o->lease_ms,
        .on_event = o->on_event,
        .ud = o->ud,
        .stop = o->stop,
    };
    if (e2b_cluster_join(&co, &o->cluster, err) < 0)
        return -1;
    struct e2b_backend *routed = NULL, *here = NULL;
    if (e2b_backend_cluster_new(o->cluster, o->backend, &routed, &here, err) < 0) {
        e2b_cluster_leave(o->cluster);
        o->cluster = NULL;
        return -1;
    }
    o->backend = routed;
    o->here = here;
    return 0;
}

void e2b_serve_cluster_stop(struct e2b_serve_opts *o)
{
    if (!o->cluster)
        return;
    e2b_cluster_leave(o->cluster); /* its threads first: they use nothing of the backends */
    e2b_backend_free(o->backend);  /* the routed one, and the here one with it */
    o->cluster = NULL;
    o->backend = o->here = NULL;
}

bool e2b_serve_cluster_is_export(const struct e2b_http1_head *r)
{
    return e2b_str_has_prefix(r->path, E2B_CLUSTER_TEMPLATE_PATH);
}

void e2b_serve_cluster_export(struct e2b_serve_conn *c, const struct e2b_http1_head *r,
                              const struct strbuf *body)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    if (!c->o->cluster)
        return e2b_serve_fail_and_close(
            c, 404, e2b_serve_error_body(404, "this server runs in no cluster"));
    if (e2b_cluster_verify(c->o->cluster, e2b_http1_header(r, "E2b-Cluster-Node"),
                           e2b_http1_header(r, "E2b-Cluster-Auth"), r->method, r->target, body->buf,
                           body->len, &err) < 0)
        return e2b_serve_fail_and_close(c, 401, e2b_serve_error_body(401, "%s", err->msg));
    if (!STREQ(r->method, "GET"))
        return e2b_serve_fail_and_close(
            c, 405, e2b_serve_error_body(405, "only GET takes a template's build"));
    const char *rest = r->path + strlen(E2B_CLUSTER_TEMPLATE_PATH);
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || !slash[1] || strchr(slash + 1, '/'))
        return e2b_serve_fail_and_close(c, 404,
                                        e2b_serve_error_body(404, "no route GET %s", r->path));
    _cleanup_free_ char *tid = xstrndup(rest, (size_t)(slash - rest));
    _cleanup_free_ char *data = e2b_data_dir();
    _cleanup_close_ int fd = open(data, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return e2b_serve_fail_and_close(
            c, 500, e2b_serve_error_body(500, "cannot make a temporary file: %s", strerror(errno)));
    if (e2b_template_export(tid, slash + 1, fd, &err) < 0)
        return e2b_serve_fail_and_close(
            c, err->code == E2B_ERR_NOT_FOUND ? 404 : 500,
            e2b_serve_error_body(err->code == E2B_ERR_NOT_FOUND ? 404 : 500, "%s", err->msg));
    struct stat st;
    fstat(fd, &st);
    _cleanup_free_ char *head = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n"
                                          "Content-Length: %lld\r\nConnection: close\r\n\r\n",
                                          (long long)st.st_size);
    if (e2b_send_all(c->fd, head, strlen(head)) < 0)
        return;
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(c->fd, fd, &off, (size_t)(st.st_size - off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* cut short: the fetching node sees fewer bytes than said */
    }
    shutdown(c->fd, SHUT_WR);
}
