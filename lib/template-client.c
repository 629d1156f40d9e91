/* template-client.c - see template-client.h */
#include "template-client.h"
#include "build-context.h"
#include "dl-archive.h"
#include "fsutil.h"
#include "http.h"
#include "template-steps.h"

#include <fcntl.h>
#include <sys/stat.h>

#define POLL_MS           200
#define STATUS_TIMEOUT_MS 60000

static int api(const char *base, const char *key, const char *method, const char *path,
               json_t *body, json_t **ret, struct e2b_error **err)
{
    _cleanup_free_ char *hk = xasprintf("X-API-Key: %s", key ? key : "");
    const char *headers[] = { hk, "Content-Type: application/json", "Accept: application/json",
                              NULL };
    _cleanup_free_ char *data = body ? e2b_json_dump(body, 0) : NULL;
    struct e2b_http_req req = { .method = method,
                                .base = base,
                                .path = path,
                                .headers = headers,
                                .body = data,
                                .body_len = data ? strlen(data) : 0,
                                .timeout_ms = STATUS_TIMEOUT_MS,
                                .retries = 2 };
    struct e2b_http_resp resp;
    int r = e2b_http_request(&req, &resp, err);
    if (r == 0 && ret) {
        if (resp.body.len)
            r = e2b_json_parse(resp.body.buf, resp.body.len, "API response", ret, err);
        else
            *ret = json_null();
    }
    e2b_http_resp_release(&resp);
    return r;
}

static char *esc(const char *s) { return e2b_url_escape(s, false); }

/* A tar.gz of paths (relative to context) into fd, the way the SDK packs a
 * COPY's files: entries in the order given, symlinks as links. */
static int write_tar(const char *context, char **paths, int fd, struct e2b_error **err)
{
    if (e2b_archive_load(err) < 0)
        return -1;
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    /* fast, not small: it crosses a network once and is unpacked at once */
    archive_write_set_filter_option(a, "gzip", "compression-level", "1");
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        int r =
            e2b_error_set(err, E2B_ERR_GENERIC, "cannot write a tar: %s", archive_error_string(a));
        archive_write_free(a);
        return r;
    }
    int r = 0;
    char buf[65536];
    for (char **p = paths; r == 0 && p && *p; p++) {
        _cleanup_free_ char *full = e2b_path_join(context, *p);
        struct stat st;
        if (lstat(full, &st) < 0) {
            r = e2b_error_sys(err, errno, "%s", full);
            break;
        }
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
            continue; /* sockets, devices: nothing the SDK would send */
        struct archive_entry *e = archive_entry_new();
        archive_entry_copy_stat(e, &st);
        archive_entry_set_pathname(e, STREQ(*p, ".") ? "./" : *p);
        char target[4096];
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(full, target, sizeof(target) - 1);
            target[n > 0 ? n : 0] = '\0';
            archive_entry_set_symlink(e, target);
        }
        if (archive_write_header(a, e) != ARCHIVE_OK)
            r = e2b_error_set(err, E2B_ERR_GENERIC, "tar entry %s: %s", *p,
                              archive_error_string(a));
        if (r == 0 && S_ISREG(st.st_mode)) {
            _cleanup_close_ int in = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            ssize_t n;
            if (in < 0)
                r = e2b_error_sys(err, errno, "%s", full);
            while (r == 0 && (n = read(in, buf, sizeof(buf))) > 0)
                if (archive_write_data(a, buf, (size_t)n) < 0)
                    r = e2b_error_set(err, E2B_ERR_GENERIC, "tar %s: %s", *p,
                                      archive_error_string(a));
        }
        archive_entry_free(e);
    }
    if (archive_write_close(a) != ARCHIVE_OK && r == 0)
        r = e2b_error_set(err, E2B_ERR_GENERIC, "cannot finish the tar: %s",
                          archive_error_string(a));
    archive_write_free(a);
    return r;
}

static ssize_t read_fd(void *buf, size_t len, void *ud)
{
    int fd = *(int *)ud;
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        return n;
    }
}

/* The COPY step's files, to the upload URL (unless the API has them). */
static int upload(const struct e2b_remote_build_opts *o, const char *tid, json_t *step,
                  char **paths, struct e2b_error **err)
{
    const char *hash = e2b_json_str(step, "filesHash");
    _cleanup_free_ char *eid = esc(tid), *path = xasprintf("/templates/%s/files/%s", eid, hash);
    _cleanup_json_ json_t *link = NULL;
    if (api(o->api_url, o->api_key, "GET", path, NULL, &link, err) < 0)
        return -1;
    const char *url = e2b_json_str(link, "url");
    if (json_is_true(json_object_get(link, "present")) || !url)
        return 0;
    const char *src = json_string_value(json_array_get(json_object_get(step, "args"), 0));
    if (o->phase) {
        _cleanup_free_ char *what = xasprintf("uploading %s", src ? src : "files");
        o->phase(o->ud, what);
    }
    char tmpl[] = "/tmp/e2b-upload.XXXXXX";
    _cleanup_close_ int fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0)
        return e2b_error_sys(err, errno, "cannot make a temporary file for the upload");
    unlink(tmpl);
    if (write_tar(o->context, paths, fd, err) < 0)
        return -1;
    off_t size = lseek(fd, 0, SEEK_END);
    lseek(fd, 0, SEEK_SET);
    /* a presigned URL: no API key goes with it */
    const char *headers[] = { "Content-Type: application/octet-stream", NULL };
    struct e2b_http_req req = { .method = "PUT",
                                .base = url,
                                .headers = headers,
                                .read_body = read_fd,
                                .body_size = (long long)size,
                                .ud = &fd,
                                .timeout_ms = 3600 * 1000 };
    struct e2b_http_resp resp;
    int r = e2b_http_request(&req, &resp, err);
    e2b_http_resp_release(&resp);
    if (r < 0)
        e2b_error_wrap(err, "cannot upload the files of COPY %s", src ? src : "");
    return r;
}

int e2b_remote_build(const struct e2b_remote_build_opts *o, json_t **ret, struct e2b_error **err)
{
    /* filesHash of every COPY step, as the SDK computes it */
    struct e2b_ignore ig = { 0 };
    if (e2b_ignore_load(&ig, o->context, err) < 0)
        return -1;
    json_t *steps = json_object_get(o->start, "steps");
    size_t n = json_array_size(steps);
    char ***paths = xcalloc(n + 1, sizeof(char **));
    int r = 0;
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st) {
        if (r < 0 || !STREQ(e2b_json_str(st, "type") ?: "", "COPY"))
            continue;
        json_t *args = json_object_get(st, "args");
        const char *src = json_string_value(json_array_get(args, 0)),
                   *dest = json_string_value(json_array_get(args, 1));
        char hash[65];
        if (e2b_files_hash(o->context, src, dest, &ig, hash, &paths[i], NULL, err) < 0) {
            r = e2b_error_wrap(err, "COPY %s %s", src, dest);
            break;
        }
        json_object_set_new(st, "filesHash", json_string(hash));
    }
    e2b_ignore_free(&ig);
    _cleanup_json_ json_t *req = NULL, *res = NULL;
    _cleanup_free_ char *tid = NULL, *bid = NULL;
    if (r == 0) {
        if (o->phase)
            o->phase(o->ud, "requesting a build");
        req = json_pack("{s:s}", "name", o->name);
        json_t *tags = json_array();
        for (const char *const *t = o->tags; t && *t; t++)
            json_array_append_new(tags, json_string(*t));
        if (json_array_size(tags))
            json_object_set_new(req, "tags", tags);
        else
            json_decref(tags);
        if (o->cpu_count)
            json_object_set_new(req, "cpuCount", json_integer(o->cpu_count));
        if (o->memory_mb)
            json_object_set_new(req, "memoryMB", json_integer(o->memory_mb));
        r = api(o->api_url, o->api_key, "POST", "/v3/templates", req, &res, err);
    }
    if (r == 0) {
        tid = e2b_json_str(res, "templateID") ? xstrdup(e2b_json_str(res, "templateID")) : NULL;
        bid = e2b_json_str(res, "buildID") ? xstrdup(e2b_json_str(res, "buildID")) : NULL;
        if (!tid || !bid)
            r = e2b_error_set(err, E2B_ERR_API, "%s answered a build request without IDs",
                              o->api_url);
    }
    json_array_foreach(steps, i, st)
        if (r == 0 && paths[i])
            r = upload(o, tid, st, paths[i], err);
    for (i = 0; i < n; i++)
        e2b_strv_free(paths[i]);
    free(paths);
    if (r < 0)
        return -1;
    _cleanup_free_ char *etid = esc(tid), *ebid = esc(bid);
    _cleanup_free_ char *start = xasprintf("/v2/templates/%s/builds/%s", etid, ebid);
    if (o->phase)
        o->phase(o->ud, "starting the build");
    if (api(o->api_url, o->api_key, "POST", start, o->start, NULL, err) < 0)
        return -1;
    /* the log as it comes, until the build ends */
    size_t offset = 0;
    for (;;) {
        _cleanup_free_ char *sp =
            xasprintf("/templates/%s/builds/%s/status?logsOffset=%zu", etid, ebid, offset);
        _cleanup_json_ json_t *s = NULL;
        if (api(o->api_url, o->api_key, "GET", sp, NULL, &s, err) < 0)
            return -1;
        json_t *entries = json_object_get(s, "logEntries");
        json_t *e;
        json_array_foreach(entries, i, e)
            if (o->log)
                o->log(o->ud, e);
        offset += json_array_size(entries);
        const char *status = e2b_json_str(s, "status") ?: "";
        if (json_array_size(entries))
            continue; /* more may be there already */
        if (STREQ(status, "ready"))
            break;
        if (STREQ(status, "error")) {
            json_t *reason = json_object_get(s, "reason");
            const char *msg = e2b_json_str(reason, "message") ?: "the build failed";
            const char *step = e2b_json_str(reason, "step");
            return step && !e2b_str_has_prefix(msg, "step ")
                       ? e2b_error_set(err, E2B_ERR_GENERIC, "build %s failed at step %s: %s", bid,
                                       step, msg)
                       : e2b_error_set(err, E2B_ERR_GENERIC, "build %s failed: %s", bid, msg);
        }
        if (o->phase)
            o->phase(o->ud, status);
        usleep(POLL_MS * 1000);
    }
    *ret = json_pack("{s:s, s:s, s:O?}", "templateID", tid, "buildID", bid, "tags",
                     json_object_get(res, "tags"));
    return 0;
}

int e2b_remote_tags_list(const char *api_url, const char *api_key, const char *name, json_t **ret,
                         struct e2b_error **err)
{
    _cleanup_free_ char *e = esc(name), *p = xasprintf("/templates/%s/tags", e);
    return api(api_url, api_key, "GET", p, NULL, ret, err);
}

static json_t *tags_json(const char *const *tags)
{
    json_t *a = json_array();
    for (; tags && *tags; tags++)
        json_array_append_new(a, json_string(*tags));
    return a;
}

int e2b_remote_tags_assign(const char *api_url, const char *api_key, const char *target,
                           const char *const *tags, json_t **ret, struct e2b_error **err)
{
    _cleanup_json_ json_t *body =
        json_pack("{s:s, s:o}", "target", target, "tags", tags_json(tags));
    return api(api_url, api_key, "POST", "/templates/tags", body, ret, err);
}

int e2b_remote_tags_remove(const char *api_url, const char *api_key, const char *name,
                           const char *const *tags, struct e2b_error **err)
{
    _cleanup_json_ json_t *body = json_pack("{s:s, s:o}", "name", name, "tags", tags_json(tags));
    return api(api_url, api_key, "DELETE", "/templates/tags", body, NULL, err);
}
