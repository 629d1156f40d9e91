/* fuzz-connect.c - Connect on its own: the envelope decoder and encoder
 * (envd-connect.h), the proto3 JSON readers and path resolution the process
 * and filesystem services read their requests with, the end-of-stream
 * message, and then the message itself as the body of a well-formed call
 * to one of the procedures, through a whole envd in the jail
 * (envd-driver.c), so that the fuzzer works on envelopes and JSON, not on
 * HTTP.
 *
 * Input: a control byte, a procedure byte (which of process.Process and
 * filesystem.Filesystem's procedures, or one that does not exist), then
 * the payload. Control bit 0: the harness frames the payload (for a server
 * stream as one message, for StreamInput one message per line, with an end
 * frame after them when bit 1 is set); else the payload goes as it is (its
 * own envelopes). Bit 2 adds Connect-Timeout-Ms: 50, bit 3 sends the body
 * chunked, bit 4 calls as root, bits 5-6 send the request in pieces.
 *
 * Checked: the decoder takes exactly the frames the format says (header,
 * big-endian length, the 64 MiB cap, "incomplete" for anything short) and
 * what the encoder frames decodes to the same message; the readers accept
 * a field only with its type, and give its value (uint32 in range and equal
 * to the JSON number or decimal string; bytes that re-encode to the same
 * bytes); a resolved path is absolute, clean and stays where the lexical
 * rules say; an end-of-stream message carries the code asked for and only
 * well-formed metadata. Through envd: exactly one answer; a unary one is
 * 200 with a JSON object or an error {code, message} whose HTTP status is
 * the code's; a stream one is 200 connect+json made of envelopes ending in
 * one end frame; and when every path the message names resolves inside the
 * caller's home, nothing outside that home changes.
 */
#include "envd-connect.h"
#include "envd-crypto.h"
#include "envd-driver.h"
#include "envd-fs.h"
#include "envd-process.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define INPUT_MAX (256 * 1024)

enum kind { UNARY, SERVER_STREAM, CLIENT_STREAM };

/* The procedures, and the fields of their messages that name a path. */
static const struct {
    const char *path;
    enum kind kind;
    const char *paths[2];
} procs[] = {
    {"/process.Process/Start", SERVER_STREAM, {NULL}},
    {"/process.Process/Connect", SERVER_STREAM, {NULL}},
    {"/process.Process/List", UNARY, {NULL}},
    {"/process.Process/SendInput", UNARY, {NULL}},
    {"/process.Process/SendSignal", UNARY, {NULL}},
    {"/process.Process/CloseStdin", UNARY, {NULL}},
    {"/process.Process/Update", UNARY, {NULL}},
    {"/process.Process/StreamInput", CLIENT_STREAM, {NULL}},
    {"/filesystem.Filesystem/Stat", UNARY, {"path"}},
    {"/filesystem.Filesystem/MakeDir", UNARY, {"path"}},
    {"/filesystem.Filesystem/Move", UNARY, {"source", "destination"}},
    {"/filesystem.Filesystem/ListDir", UNARY, {"path"}},
    {"/filesystem.Filesystem/Remove", UNARY, {"path"}},
    {"/filesystem.Filesystem/WatchDir", SERVER_STREAM, {"path"}},
    {"/filesystem.Filesystem/CreateWatcher", UNARY, {"path"}},
    {"/filesystem.Filesystem/GetWatcherEvents", UNARY, {NULL}},
    {"/filesystem.Filesystem/RemoveWatcher", UNARY, {NULL}},
    {"/filesystem.Filesystem/Nope", UNARY, {NULL}}, /* no such procedure */
};

static struct e2b_user user = {.name = "user", .uid = 1000, .gid = 1000, .home = FUZZ_ENVD_HOME, .shell = "/bin/sh"};
static struct e2b_user root = {.name = "root", .uid = 0, .gid = 0, .home = "/root", .shell = "/bin/sh"};

/* ---- envelopes ---- */

static void check_frame_roundtrip(const json_t *msg, unsigned flags)
{
    struct strbuf b = STRBUF_INIT;
    strbuf_init(&b);
    e2b_rpc_frame(&b, flags, msg);
    unsigned f2;
    const char *p;
    size_t pl;
    FUZZ_ASSERT(e2b_rpc_unframe(b.buf, b.len, &f2, &p, &pl) == (ssize_t)b.len);
    FUZZ_ASSERT(f2 == flags && p == b.buf + 5 && pl == b.len - 5);
    json_error_t jerr;
    json_t *back = json_loadb(p, pl, 0, &jerr);
    FUZZ_ASSERT(back && json_equal(back, msg));
    json_decref(back);
    FUZZ_ASSERT(e2b_rpc_unframe(b.buf, b.len - 1, &f2, &p, &pl) == 0); /* one byte short */
    strbuf_release(&b);
}

static void check_message(json_t *msg);

/* Walk the payload as a sequence of envelopes, as a reference decoder
 * would, and compare. */
static void check_envelopes(const uint8_t *d, size_t len)
{
    size_t off = 0;
    while (off < len) {
        unsigned flags = 0xdead;
        const char *payload = NULL;
        size_t plen = 0;
        ssize_t r = e2b_rpc_unframe((const char *)d + off, len - off, &flags, &payload, &plen);
        size_t left = len - off;
        if (left < 5) {
            FUZZ_ASSERT(r == 0);
            return;
        }
        uint32_t n = (uint32_t)d[off + 1] << 24 | (uint32_t)d[off + 2] << 16 | (uint32_t)d[off + 3] << 8 | d[off + 4];
        if (n > 64u * 1024 * 1024) {
            FUZZ_ASSERT(r == -1);
            return;
        }
        if (left - 5 < n) {
            FUZZ_ASSERT(r == 0);
            return;
        }
        FUZZ_ASSERT(r == (ssize_t)n + 5 && flags == d[off] && payload == (const char *)d + off + 5 && plen == n);
        json_error_t jerr;
        json_t *msg = json_loadb(payload, plen, JSON_REJECT_DUPLICATES, &jerr);
        if (json_is_object(msg)) {
            check_frame_roundtrip(msg, flags & 3);
            check_message(msg);
        }
        json_decref(msg);
        off += (size_t)r;
    }
}

/* ---- the proto3 readers ---- */

static void check_str(const json_t *obj, const char *jn, const char *pn)
{
    const char *v = "unset";
    struct e2b_error *err = NULL;
    json_t *raw = e2b_pj_get(obj, jn, pn);
    if (e2b_pj_str(obj, jn, pn, &v, &err) == 0) {
        FUZZ_ASSERT(err == NULL);
        FUZZ_ASSERT(raw ? json_is_string(raw) && v == json_string_value(raw) : !strcmp(v, "unset"));
    } else {
        FUZZ_ASSERT(err && err->code == E2B_ERR_INVALID && err->msg && raw && !json_is_string(raw));
        e2b_error_free(err);
    }
}

static void check_u32(const json_t *obj, const char *jn)
{
    uint32_t v = 7;
    bool present = true;
    struct e2b_error *err = NULL;
    json_t *raw = e2b_pj_get(obj, jn, NULL);
    if (e2b_pj_u32(obj, jn, NULL, &v, &present, &err) == 0) {
        FUZZ_ASSERT(err == NULL && present == (raw != NULL));
        if (!raw)
            FUZZ_ASSERT(v == 7);
        else if (json_is_integer(raw))
            FUZZ_ASSERT(json_integer_value(raw) == (json_int_t)v);
        else if (json_is_real(raw))
            FUZZ_ASSERT(json_real_value(raw) == (double)v);
        else
            FUZZ_ASSERT(json_is_string(raw) && strtoll(json_string_value(raw), NULL, 10) == (long long)v);
    } else {
        FUZZ_ASSERT(err && err->code == E2B_ERR_INVALID && !present && raw);
        e2b_error_free(err);
    }
}

static void check_bool(const json_t *obj, const char *jn, const char *pn)
{
    bool v = false;
    struct e2b_error *err = NULL;
    json_t *raw = e2b_pj_get(obj, jn, pn);
    if (e2b_pj_bool(obj, jn, pn, &v, &err) == 0)
        FUZZ_ASSERT(!raw || (json_is_boolean(raw) && v == json_is_true(raw)));
    else
        FUZZ_ASSERT(err && raw && !json_is_boolean(raw));
    e2b_error_free(err);
}

static json_t *check_obj(const json_t *obj, const char *jn)
{
    json_t *v = NULL;
    struct e2b_error *err = NULL;
    json_t *raw = e2b_pj_get(obj, jn, NULL);
    if (e2b_pj_obj(obj, jn, NULL, &v, &err) == 0) {
        FUZZ_ASSERT(v == raw && (!raw || json_is_object(raw)));
    } else {
        FUZZ_ASSERT(err && raw && !json_is_object(raw));
        v = NULL;
    }
    e2b_error_free(err);
    return v;
}

static void check_bytes(const json_t *obj, const char *jn)
{
    uint8_t *data = NULL;
    size_t len = 0;
    bool present = false;
    struct e2b_error *err = NULL;
    if (e2b_pj_bytes(obj, jn, NULL, &data, &len, &present, &err) == 0 && present) {
        /* what was decoded encodes and decodes back to itself */
        for (int pad = 0; pad < 2; pad++) {
            char *enc = e2b_base64_encode(data, len, pad);
            uint8_t *again = NULL;
            ssize_t n = e2b_base64_decode(enc, strlen(enc), &again);
            FUZZ_ASSERT(n == (ssize_t)len && (len == 0 || !memcmp(again, data, len)));
            free(again);
            free(enc);
        }
    } else if (err) {
        FUZZ_ASSERT(!present && err->code == E2B_ERR_INVALID);
    }
    free(data);
    e2b_error_free(err);
}

/* ---- paths ---- */

static bool clean_abs(const char *p)
{
    if (p[0] != '/')
        return false;
    if (!strcmp(p, "/"))
        return true;
    if (p[strlen(p) - 1] == '/' || strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../"))
        return false;
    size_t n = strlen(p);
    return !(n >= 2 && !strcmp(p + n - 2, "/.")) && !(n >= 3 && !strcmp(p + n - 3, "/.."));
}

static bool has_dotdot(const char *p)
{
    for (const char *s = p; (s = strstr(s, "..")); s += 2)
        if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
            return true;
    return false;
}

static bool below(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && path[n] == '/';
}

/* Resolve like a service would; NULL when it refuses. */
static char *check_resolve(const char *path, const struct e2b_user *u, const char *workdir)
{
    struct e2b_error *err = NULL;
    char *abs = e2b_envd_resolve_path(path, u, workdir, &err);
    if (!abs) {
        FUZZ_ASSERT(err && err->code == E2B_ERR_INVALID && err->msg);
        FUZZ_ASSERT(strlen(path) > 4096 || (path[0] == '~' && path[1] && path[1] != '/'));
        e2b_error_free(err);
        return NULL;
    }
    FUZZ_ASSERT(clean_abs(abs));
    char *again = e2b_path_clean(abs);
    FUZZ_ASSERT(!strcmp(again, abs)); /* clean is idempotent */
    free(again);
    if (path[0] == '/') {
        char *c = e2b_path_clean(path);
        FUZZ_ASSERT(!strcmp(c, abs));
        free(c);
    } else if (*path && !has_dotdot(path)) {
        /* relative (or ~/...) without "..": in the home, where it says */
        FUZZ_ASSERT(!strcmp(abs, u->home) || below(abs, u->home));
    } else if (!*path) { /* the default workdir, else the home */
        char *c = e2b_path_clean(workdir && *workdir ? workdir : u->home);
        FUZZ_ASSERT(!strcmp(c, abs));
        free(c);
    }
    return abs;
}

static void check_message(json_t *msg)
{
    static const char *const strs[][2] = {{"path", NULL},        {"source", NULL}, {"destination", NULL},
                                          {"tag", NULL},         {"cwd", NULL},    {"watcherId", "watcher_id"},
                                          {"cmd", NULL}};
    for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
        check_str(msg, strs[i][0], strs[i][1]);
    for (size_t i = 0; i < 3; i++) {
        const char *p = json_string_value(e2b_pj_get(msg, strs[i][0], NULL));
        if (!p)
            continue;
        free(check_resolve(p, &user, NULL));
        free(check_resolve(p, &root, "/tmp"));
    }
    check_u32(msg, "depth");
    check_bool(msg, "recursive", NULL);
    check_bool(msg, "includeEntry", "include_entry");
    check_bool(msg, "stdin", NULL);
    json_t *proc = check_obj(msg, "process");
    if (proc) {
        check_str(proc, "cmd", NULL);
        check_str(proc, "cwd", NULL);
        check_str(proc, "tag", NULL);
        check_u32(proc, "pid");
        json_t *envs = e2b_pj_get(proc, "envs", NULL);
        char **env = e2b_process_env(&user, json_is_object(envs) ? envs : NULL);
        size_t seen = 0;
        for (char **e = env; *e; e++) {
            FUZZ_ASSERT(strchr(*e, '=') != NULL);
            seen += !strncmp(*e, "PATH=", 5) + !strncmp(*e, "HOME=", 5) + !strncmp(*e, "USER=", 5) +
                    !strncmp(*e, "LOGNAME=", 8);
        }
        FUZZ_ASSERT(seen >= 4);
        e2b_strv_free(env);
    }
    json_t *pty = check_obj(msg, "pty");
    json_t *size = pty ? check_obj(pty, "size") : NULL;
    if (size) {
        check_u32(size, "cols");
        check_u32(size, "rows");
    }
    json_t *input = check_obj(msg, "input");
    json_t *data = check_obj(msg, "data");
    json_t *dinput = data ? check_obj(data, "input") : NULL;
    json_t *ins[] = {input, dinput};
    for (size_t i = 0; i < ARRAY_SIZE(ins); i++)
        if (ins[i]) {
            check_bytes(ins[i], "stdin");
            check_bytes(ins[i], "pty");
        }
    (void)check_obj(msg, "start");

    /* an end-of-stream message with the message's metadata as trailers */
    json_t *md = json_object_get(msg, "metadata");
    for (int code = RPC_OK; code <= RPC_UNAUTHENTICATED; code += 5) {
        json_t *end = e2b_rpc_end_message(code, "why", json_is_object(md) ? json_deep_copy(md) : NULL);
        json_t *e = json_object_get(end, "error");
        FUZZ_ASSERT(code == RPC_OK ? !e : !strcmp(json_string_value(json_object_get(e, "code")), e2b_rpc_code_name(code)));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(end, "metadata"), k, v) {
            FUZZ_ASSERT(e2b_http_header_valid(k, "") && json_is_array(v) && json_array_size(v) > 0);
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) FUZZ_ASSERT(json_is_string(x));
        }
        json_decref(end);
    }
}

/* ---- through envd ---- */

static void add_frame(struct strbuf *b, unsigned flags, const char *p, size_t n)
{
    unsigned char h[5] = {(unsigned char)flags, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    strbuf_add(b, h, 5);
    strbuf_add(b, p, n);
}

static void build_body(struct strbuf *b, enum kind k, unsigned ctl, const uint8_t *d, size_t len)
{
    const char *p = (const char *)d;
    if (!(ctl & 1) || k == UNARY) {
        strbuf_add(b, p, len);
    } else if (k == SERVER_STREAM) {
        add_frame(b, 0, p, len);
    } else {
        for (size_t off = 0; off < len;) {
            const char *nl = memchr(p + off, '\n', len - off);
            size_t n = nl ? (size_t)(nl - p - off) : len - off;
            add_frame(b, 0, p + off, n);
            off += n + (nl != NULL);
        }
        if (ctl & 2)
            add_frame(b, E2B_RPC_FLAG_END, "{}", 2);
    }
}

static void build_request(struct strbuf *r, const char *path, enum kind k, unsigned ctl, const struct strbuf *body)
{
    strbuf_addf(r, "POST %s HTTP/1.1\r\nHost: envd\r\nContent-Type: %s\r\n", path,
                k == UNARY ? "application/json" : "application/connect+json");
    if (ctl & 4)
        strbuf_addstr(r, "Connect-Timeout-Ms: 50\r\n");
    if (ctl & 16)
        strbuf_addstr(r, "Authorization: Basic cm9vdDo=\r\n"); /* root: */
    if (ctl & 8) {
        strbuf_addstr(r, "Transfer-Encoding: chunked\r\n\r\n");
        size_t half = body->len / 2;
        size_t pieces[2] = {half, body->len - half};
        for (size_t i = 0, off = 0; i < 2; off += pieces[i++]) {
            if (!pieces[i])
                continue;
            strbuf_addf(r, "%zx\r\n", pieces[i]);
            strbuf_add(r, body->buf + off, pieces[i]);
            strbuf_addstr(r, "\r\n");
        }
        strbuf_addstr(r, "0\r\n\r\n");
    } else {
        strbuf_addf(r, "Content-Length: %zu\r\n\r\n", body->len);
        strbuf_add(r, body->buf ? body->buf : "", body->len);
    }
}

/* Does every path the procedure takes from the message resolve below the
 * caller's home? (Absent is "", the home itself: not below it.) */
static bool stays_home(unsigned which, const uint8_t *d, size_t len, const struct e2b_user *u)
{
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)d, len, JSON_REJECT_DUPLICATES, &jerr);
    bool home = true;
    for (size_t i = 0; i < 2 && procs[which].paths[i] && home; i++) {
        json_t *raw = e2b_pj_get(msg, procs[which].paths[i], NULL);
        if (raw && !json_is_string(raw))
            continue; /* refused */
        struct e2b_error *err = NULL;
        char *abs = e2b_envd_resolve_path(raw ? json_string_value(raw) : "", u, NULL, &err);
        home = !abs || below(abs, u->home);
        free(abs);
        e2b_error_free(err);
    }
    json_decref(msg);
    return home;
}

static void through_envd(unsigned ctl, unsigned which, const uint8_t *d, size_t len)
{
    const char *path = procs[which].path;
    enum kind k = procs[which].kind;
    bool as_root = ctl & 16;
    struct strbuf body = STRBUF_INIT, req = STRBUF_INIT;
    strbuf_init(&body);
    strbuf_init(&req);
    build_body(&body, k, ctl, d, len);
    build_request(&req, path, k, ctl, &body);

    fuzz_envd_reset(false, false);
    const char *home = as_root ? root.home : user.home;
    /* the message as a whole is what unary calls and framed streams read */
    bool check_home = (k == UNARY || (ctl & 1)) && stays_home(which, d, len, as_root ? &root : &user);
    const char *const skip[] = {home, NULL};
    struct fuzz_tree before, after;
    if (check_home)
        fuzz_tree_snapshot(&before, skip, NULL);

    struct fuzz_envd_exchange x;
    fuzz_envd_exchange(req.buf, req.len, (ctl >> 5) & 3, false, &x);
    struct fuzz_envd_response *r = NULL;
    size_t n = fuzz_envd_check_responses(&x, "POST", &r);
    FUZZ_ASSERT(n == 1); /* a well-formed call is answered, once */
    if (k == UNARY && r->complete) {
        json_error_t jerr;
        json_t *j = json_loadb(r->body.buf ? r->body.buf : "", r->body.len, 0, &jerr);
        FUZZ_ASSERT(json_is_object(j));
        FUZZ_ASSERT(r->ctype && !strcmp(r->ctype, "application/json"));
        if (r->status != 200) {
            const char *code = json_string_value(json_object_get(j, "code"));
            int c = -1;
            for (int i = RPC_CANCELED; code && i <= RPC_UNAUTHENTICATED; i++)
                if (!strcmp(code, e2b_rpc_code_name(i)))
                    c = i;
            FUZZ_ASSERT(c > 0);
            json_t *m = json_object_get(j, "message");
            FUZZ_ASSERT(!m || json_is_string(m));
            if (strcmp(path, "/filesystem.Filesystem/Nope")) /* no such procedure: 404 like a mux */
                FUZZ_ASSERT(r->status == e2b_rpc_code_http(c));
            else
                FUZZ_ASSERT(r->status == 404 && c == RPC_UNIMPLEMENTED);
        }
        json_decref(j);
    } else if (k != UNARY) {
        FUZZ_ASSERT(r->status == 200 && r->ctype && !strcmp(r->ctype, "application/connect+json"));
    }
    fuzz_envd_responses_free(r, n);
    fuzz_envd_exchange_release(&x);

    if (check_home) {
        fuzz_tree_snapshot(&after, skip, NULL);
        fuzz_tree_assert_same(&before, &after);
        fuzz_tree_release(&before);
        fuzz_tree_release(&after);
    }
    strbuf_release(&body);
    strbuf_release(&req);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_envd_start();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > INPUT_MAX)
        return 0;
    unsigned ctl = data[0], which = data[1] % ARRAY_SIZE(procs);
    const uint8_t *d = data + 2;
    size_t len = size - 2;

    check_envelopes(d, len);
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)d, len, JSON_REJECT_DUPLICATES, &jerr);
    if (json_is_object(msg)) {
        check_frame_roundtrip(msg, 0);
        check_message(msg);
    }
    json_decref(msg);

    through_envd(ctl, which, d, len);
    return 0;
}
