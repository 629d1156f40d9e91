/* t-http.c - the libcurl wrapper against a real server: envd on a unix
 * socket (E2B_ENVD, default build/envd). Streams both ways, error bodies to
 * messages, keep_error_status, connection failures with retries. */
#include "fsutil.h"
#include "http.h"
#include "tap.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

static size_t got_bytes;
static int count(const void *d, size_t n, void *ud)
{
    (void)d, (void)ud;
    got_bytes += n;
    return 0;
}

static size_t left_to_send;
static ssize_t produce(void *buf, size_t len, void *ud)
{
    (void)ud;
    size_t n = len < left_to_send ? len : left_to_send;
    memset(buf, 'x', n);
    left_to_send -= n;
    return (ssize_t)n;
}

int main(void)
{
    const char *envd = getenv("E2B_ENVD") ? getenv("E2B_ENVD") : "build/envd";
    if (access(envd, X_OK) < 0)
        tap_skip_all("no envd binary (set E2B_ENVD)");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char dir[] = "/tmp/t-http.XXXXXX";
    ok(mkdtemp(dir) != NULL, "scratch dir");
    _cleanup_free_ char *sock = e2b_path_join(dir, "envd.sock");
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1), dup2(null, 2);
        execl(envd, "envd", "--unix", sock, "--no-tcp", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && access(sock, F_OK) < 0; i++)
        usleep(20000);
    _cleanup_free_ char *base = xasprintf("unix:%s", sock);
    struct e2b_error *err = NULL;
    struct e2b_http_resp resp;

    struct e2b_http_req health = {.base = base, .path = "/health", .retries = 3};
    ok(e2b_http_request(&health, &resp, &err) == 0 && resp.status == 204, "GET over a unix socket");
    e2b_http_resp_release(&resp);

    const char *json[] = {"Content-Type: application/json", NULL};
    struct e2b_http_req list = {.base = base, .path = "/process.Process/List", .headers = json,
                                .body = "{}", .body_len = 2};
    ok(e2b_http_request(&list, &resp, &err) == 0 && resp.status == 200 &&
           strstr(resp.body.buf, "processes"), "POST with a body");
    ok(e2b_http_resp_header(&resp, "content-type") != NULL, "response headers, any case");
    e2b_http_resp_release(&resp);

    struct e2b_http_req stat_req = {.base = base, .path = "/filesystem.Filesystem/Stat", .headers = json,
                                .body = "{\"path\":\"/no/such/file\"}", .body_len = 24};
    ok(e2b_http_request(&stat_req, &resp, &err) < 0, "error status fails the call");
    ok(err && err->code == E2B_ERR_NOT_FOUND && err->http_status == 404, "404 maps to not found");
    ok(err && strstr(err->msg, "404") && strstr(err->msg, "/no/such/file"),
       "message taken from the JSON error body: %s", err ? err->msg : "");
    e2b_error_free(err), err = NULL;
    e2b_http_resp_release(&resp);
    stat_req.keep_error_status = true;
    ok(e2b_http_request(&stat_req, &resp, &err) == 0 && resp.status == 404, "keep_error_status returns the status");
    e2b_http_resp_release(&resp);

    /* Streamed upload of 8 MiB from a callback, then a streamed download. */
    _cleanup_free_ char *target = e2b_path_join(dir, "up/big.bin");
    _cleanup_free_ char *escaped = e2b_url_escape(target, true);
    _cleanup_free_ char *path = xasprintf("/files?path=%s", escaped);
    const char *octet[] = {"Content-Type: application/octet-stream", NULL};
    left_to_send = 8u << 20;
    struct e2b_http_req up = {.base = base, .path = path, .headers = octet, .read_body = produce,
                              .body_size = -1};
    ok(e2b_http_request(&up, &resp, &err) == 0 && resp.status == 200, "chunked streamed upload");
    e2b_http_resp_release(&resp);
    struct stat st;
    ok(stat(target, &st) == 0 && st.st_size == (8 << 20), "upload arrived whole");
    struct e2b_http_req down = {.base = base, .path = path, .on_data = count};
    ok(e2b_http_request(&down, &resp, &err) == 0 && got_bytes == (8u << 20) && resp.body.len == 0,
       "streamed download goes to the callback, not memory");
    e2b_http_resp_release(&resp);

    _cleanup_free_ char *q = e2b_url_escape("a b/c&d", false);
    is_str(q, "a%20b%2Fc%26d", "query escaping");

    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    struct e2b_http_req dead = {.base = base, .path = "/health", .retries = 1,
                                .connect_timeout_ms = 500};
    ok(e2b_http_request(&dead, &resp, &err) < 0 && err->code == E2B_ERR_NETWORK &&
           strstr(err->msg, "cannot reach"), "a dead server is a network error naming it");
    e2b_error_free(err);
    e2b_http_resp_release(&resp);
    e2b_rm_rf(dir, NULL);
    return tap_done();
}
