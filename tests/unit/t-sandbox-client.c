/* t-sandbox-client.c - the envd client's Connect stream decoder (frames split
 * across reads, several in one read, end-stream errors, bad frames), process
 * events and exit statuses, request building. */
#include "sandbox-client.h"
#include "envd-crypto.h"
#include "tap.h"

#include <signal.h>

struct seen {
    struct strbuf log;  /* "a|b|..." of each message's "v" */
    int stop_after;     /* stop once this many were seen; 0: never */
    int n;
};

static int on_msg(json_t *msg, void *ud)
{
    struct seen *s = ud;
    const char *v = e2b_json_str(msg, "v");
    strbuf_addf(&s->log, "%s%s", s->log.len ? "|" : "", v ? v : "?");
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? -1 : 0;
}

static void frame_str(struct strbuf *out, unsigned flags, const char *json)
{
    size_t n = strlen(json);
    uint8_t h[5] = {(uint8_t)flags, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    strbuf_add(out, h, 5);
    strbuf_add(out, json, n);
}

/* A stream of three messages and a clean end frame. */
static void sample(struct strbuf *s)
{
    frame_str(s, 0, "{\"v\":\"one\"}");
    frame_str(s, 0, "{\"v\":\"two\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
    frame_str(s, 0, "{\"v\":\"three\"}");
    frame_str(s, 2, "{}");
}

/* Feed data in pieces of `step` bytes; returns finish()'s result. */
static int feed_in_steps(const struct strbuf *data, size_t step, struct seen *s, struct e2b_error **err)
{
    struct e2b_connect_decoder d;
    e2b_connect_decoder_init(&d, on_msg, s);
    int r = 0;
    for (size_t off = 0; off < data->len && r == 0; off += step) {
        size_t n = data->len - off < step ? data->len - off : step;
        r = e2b_connect_decoder_feed(&d, data->buf + off, n);
    }
    r = e2b_connect_decoder_finish(&d, err);
    e2b_connect_decoder_release(&d);
    return r;
}

static void test_splits(void)
{
    struct strbuf data = STRBUF_INIT;
    sample(&data);
    bool all = true;
    for (size_t step = 1; step <= data.len; step++) {
        struct seen s = {.log = STRBUF_INIT};
        struct e2b_error *err = NULL;
        int r = feed_in_steps(&data, step, &s, &err);
        if (r != 0 || !s.log.buf || strcmp(s.log.buf, "one|two|three") != 0) {
            diag("step %zu: r=%d log=%s err=%s", step, r, s.log.buf ? s.log.buf : "",
                 err ? err->msg : "");
            all = false;
        }
        e2b_error_free(err);
        strbuf_release(&s.log);
    }
    ok(all, "every split of a 4-frame stream (1 byte at a time .. all at once) gives the same messages");

    /* The 5-byte header itself split, then a body in two. */
    struct e2b_connect_decoder d;
    struct seen s = {.log = STRBUF_INIT};
    e2b_connect_decoder_init(&d, on_msg, &s);
    struct strbuf one = STRBUF_INIT;
    frame_str(&one, 0, "{\"v\":\"hdr\"}");
    e2b_connect_decoder_feed(&d, one.buf, 2);
    e2b_connect_decoder_feed(&d, one.buf + 2, 3);
    is_int(s.n, 0, "nothing delivered with only the header");
    e2b_connect_decoder_feed(&d, one.buf + 5, 4);
    is_int(s.n, 0, "nothing delivered with half a body");
    e2b_connect_decoder_feed(&d, one.buf + 9, one.len - 9);
    is_str(s.log.buf, "hdr", "delivered once the body is whole");
    struct e2b_error *err = NULL;
    ok(e2b_connect_decoder_finish(&d, &err) < 0 && err && err->code == E2B_ERR_NETWORK,
       "a stream without an end frame is an error");
    ok(err && strstr(err->msg, "without its end frame"), "which says so (%s)", err ? err->msg : "");
    e2b_error_free(err);
    e2b_connect_decoder_release(&d);
    strbuf_release(&s.log);
    strbuf_release(&one);
    strbuf_release(&data);
}

static void test_end_errors(void)
{
    struct strbuf data = STRBUF_INIT;
    frame_str(&data, 0, "{\"v\":\"before\"}");
    frame_str(&data, 2, "{\"error\":{\"code\":\"not_found\",\"message\":\"process 42 not found\"},"
                        "\"metadata\":{}}");
    struct seen s = {.log = STRBUF_INIT};
    struct e2b_error *err = NULL;
    int r = feed_in_steps(&data, data.len, &s, &err);
    ok(r < 0, "an end frame with an error fails the call");
    is_str(s.log.buf, "before", "messages before it were delivered");
    is_int(err ? err->code : 0, E2B_ERR_NOT_FOUND, "not_found maps to E2B_ERR_NOT_FOUND");
    is_str(err ? err->msg : NULL, "envd: not_found: process 42 not found", "message names code and text");
    e2b_error_free(err);
    err = NULL;
    strbuf_release(&s.log);

    /* The same error frame one byte at a time. */
    s = (struct seen){.log = STRBUF_INIT};
    r = feed_in_steps(&data, 1, &s, &err);
    ok(r < 0 && err && err->code == E2B_ERR_NOT_FOUND, "byte by byte, the error frame still fails");
    e2b_error_free(err);
    err = NULL;
    strbuf_release(&s.log);
    strbuf_reset(&data);

    frame_str(&data, 2, "{\"error\":{\"code\":\"deadline_exceeded\"}}");
    r = feed_in_steps(&data, 3, &s, &err);
    ok(r < 0 && err && err->code == E2B_ERR_TIMEOUT, "deadline_exceeded is a timeout");
    is_str(err ? err->msg : NULL, "envd: deadline_exceeded", "an error without a message");
    e2b_error_free(err);
    err = NULL;
    strbuf_reset(&data);

    frame_str(&data, 2, "");
    ok(feed_in_steps(&data, 5, &s, &err) == 0 && !err, "an empty end frame is a clean end");
    strbuf_reset(&data);

    frame_str(&data, 2, "{\"metadata\":{\"x\":[\"y\"]}}");
    ok(feed_in_steps(&data, 7, &s, &err) == 0 && !err, "an end frame with only metadata is a clean end");
    strbuf_reset(&data);

    frame_str(&data, 2, "{}");
    frame_str(&data, 0, "{\"v\":\"late\"}");
    s = (struct seen){.log = STRBUF_INIT};
    ok(feed_in_steps(&data, data.len, &s, &err) < 0 && err, "data after the end frame is an error");
    is_int(s.n, 0, "and is not delivered");
    e2b_error_free(err);
    err = NULL;
    strbuf_release(&s.log);
    strbuf_release(&data);
}

static void test_bad_frames(void)
{
    struct strbuf data = STRBUF_INIT;
    struct seen s = {.log = STRBUF_INIT};
    struct e2b_error *err = NULL;

    frame_str(&data, 0, "{not json");
    ok(feed_in_steps(&data, data.len, &s, &err) < 0 && err && err->code == E2B_ERR_INVALID,
       "a frame that is not JSON fails with E2B_ERR_INVALID");
    e2b_error_free(err);
    err = NULL;
    strbuf_reset(&data);

    frame_str(&data, 0, "[1,2]");
    ok(feed_in_steps(&data, data.len, &s, &err) < 0 && err, "a frame that is not an object fails");
    e2b_error_free(err);
    err = NULL;
    strbuf_reset(&data);

    frame_str(&data, 1, "{}");
    ok(feed_in_steps(&data, data.len, &s, &err) < 0 && err && err->code == E2B_ERR_UNSUPPORTED,
       "a compressed frame is refused");
    e2b_error_free(err);
    err = NULL;
    strbuf_reset(&data);

    static const uint8_t huge[] = {0, 0x7f, 0xff, 0xff, 0xff};
    strbuf_add(&data, huge, sizeof(huge));
    ok(feed_in_steps(&data, data.len, &s, &err) < 0 && err && strstr(err->msg, "limit"),
       "a 2 GiB length is refused at once, not buffered");
    e2b_error_free(err);
    err = NULL;
    strbuf_reset(&data);

    frame_str(&data, 0, "{\"v\":\"a\"}");
    strbuf_setlen(&data, data.len - 2);
    ok(feed_in_steps(&data, 4, &s, &err) < 0 && err && strstr(err->msg, "cut inside a frame"),
       "a stream cut inside a frame says so");
    e2b_error_free(err);
    err = NULL;
    strbuf_reset(&data);

    ok(feed_in_steps(&data, 1, &s, &err) < 0 && err, "an empty body is not a stream");
    e2b_error_free(err);
    strbuf_release(&s.log);
    strbuf_release(&data);
}

static void test_stop(void)
{
    struct strbuf data = STRBUF_INIT;
    sample(&data);
    struct seen s = {.log = STRBUF_INIT, .stop_after = 2};
    struct e2b_connect_decoder d;
    e2b_connect_decoder_init(&d, on_msg, &s);
    int r = e2b_connect_decoder_feed(&d, data.buf, data.len);
    ok(r < 0 && d.stopped, "the callback's -1 stops the decoder");
    is_str(s.log.buf, "one|two", "no message after the stop");
    ok(e2b_connect_decoder_feed(&d, "x", 1) < 0, "feeding a stopped decoder keeps failing");
    struct e2b_error *err = NULL;
    ok(e2b_connect_decoder_finish(&d, &err) == 0 && !err, "a stop we asked for is not an error");
    e2b_connect_decoder_release(&d);
    strbuf_release(&s.log);
    strbuf_release(&data);
}

static void test_envelope(void)
{
    json_t *m = json_pack("{s:s}", "path", "/tmp");
    struct strbuf b = STRBUF_INIT;
    e2b_connect_envelope(&b, 0, m);
    is_int(b.len, 5 + strlen("{\"path\":\"/tmp\"}"), "envelope is 5 bytes + JSON");
    is_int((uint8_t)b.buf[0], 0, "flag byte 0");
    is_int((uint8_t)b.buf[4], strlen("{\"path\":\"/tmp\"}"), "big-endian length");
    struct seen s = {.log = STRBUF_INIT};
    struct e2b_connect_decoder d;
    e2b_connect_decoder_init(&d, on_msg, &s);
    e2b_connect_decoder_feed(&d, b.buf, b.len);
    is_int(d.frames, 1, "an envelope decodes back");
    e2b_connect_decoder_release(&d);
    strbuf_release(&s.log);
    strbuf_release(&b);
    json_decref(m);
}

struct proc_seen {
    unsigned pid;
    struct strbuf out, err, pty;
    int code;
    bool ended, exited;
};

static int p_start(unsigned pid, void *ud)
{
    ((struct proc_seen *)ud)->pid = pid;
    return 0;
}

static int p_output(enum e2b_output_kind k, const void *data, size_t len, void *ud)
{
    struct proc_seen *p = ud;
    strbuf_add(k == E2B_OUT_STDOUT ? &p->out : k == E2B_OUT_STDERR ? &p->err : &p->pty, data, len);
    return 0;
}

static int p_end(const struct e2b_process_end *e, void *ud)
{
    struct proc_seen *p = ud;
    p->ended = true;
    p->code = e->exit_code;
    p->exited = e->exited;
    return 0;
}

static int end_code(const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    int c = e2b_process_end_code(j);
    json_decref(j);
    return c;
}

static void test_process_events(void)
{
    struct proc_seen p = {.out = STRBUF_INIT, .err = STRBUF_INIT, .pty = STRBUF_INIT, .code = -1};
    struct e2b_process_events ev = {.on_start = p_start, .on_output = p_output, .on_end = p_end, .ud = &p};
    _cleanup_free_ char *b_hi = e2b_base64_encode("hi\n", 3, true);
    _cleanup_free_ char *b_oops = e2b_base64_encode("oops", 4, true);
    _cleanup_free_ char *b_bin = e2b_base64_encode("\0\xff", 2, true);
    const char *msgs[] = {
        "{\"event\":{\"start\":{\"pid\":4242}}}",
        "{\"event\":{\"keepalive\":{}}}",
        NULL, NULL, NULL,
        "{\"event\":{\"end\":{\"exitCode\":3,\"exited\":true,\"status\":\"exit status 3\"}}}",
    };
    char *m2 = xasprintf("{\"event\":{\"data\":{\"stdout\":\"%s\"}}}", b_hi);
    char *m3 = xasprintf("{\"event\":{\"data\":{\"stderr\":\"%s\"}}}", b_oops);
    char *m4 = xasprintf("{\"event\":{\"data\":{\"pty\":\"%s\"}}}", b_bin);
    msgs[2] = m2, msgs[3] = m3, msgs[4] = m4;
    struct strbuf stream = STRBUF_INIT;
    for (size_t i = 0; i < ARRAY_SIZE(msgs); i++)
        frame_str(&stream, 0, msgs[i]);
    frame_str(&stream, 2, "{}");
    struct e2b_connect_decoder d;
    e2b_connect_decoder_init(&d, (e2b_connect_msg_fn *)e2b_process_event_dispatch, &ev);
    for (size_t off = 0; off < stream.len; off += 7)
        e2b_connect_decoder_feed(&d, stream.buf + off, stream.len - off < 7 ? stream.len - off : 7);
    struct e2b_error *err = NULL;
    ok(e2b_connect_decoder_finish(&d, &err) == 0, "a process stream decodes");
    is_int(p.pid, 4242, "start event gives the pid");
    is_str(p.out.buf, "hi\n", "stdout decoded from base64");
    is_str(p.err.buf, "oops", "stderr kept apart");
    ok(p.pty.len == 2 && (uint8_t)p.pty.buf[0] == 0 && (uint8_t)p.pty.buf[1] == 0xff,
       "pty bytes are binary-safe");
    ok(p.ended && p.exited, "end event seen, exited");
    is_int(p.code, 3, "exit code 3");
    e2b_connect_decoder_release(&d);
    free(m2), free(m3), free(m4);
    strbuf_release(&stream);
    strbuf_release(&p.out), strbuf_release(&p.err), strbuf_release(&p.pty);

    is_int(end_code("{\"exited\":true,\"status\":\"exit status 0\"}"), 0,
           "no exitCode (proto3 zero) is 0");
    is_int(end_code("{\"exitCode\":-1,\"status\":\"signal: killed\"}"), 128 + SIGKILL, "killed is 137");
    is_int(end_code("{\"exitCode\":-1,\"status\":\"signal: terminated\"}"), 128 + SIGTERM, "terminated is 143");
    is_int(end_code("{\"exitCode\":-1,\"status\":\"signal: segmentation fault (core dumped)\"}"),
           128 + SIGSEGV, "segfault with core is 139");
    is_int(end_code("{\"exitCode\":-1,\"status\":\"signal: signal 40\"}"), 128 + 40, "a numbered signal");
    is_int(end_code("{\"exitCode\":-1}"), 128 + SIGKILL, "-1 without a status reads as killed");
    is_int(end_code("{\"exitCode\":300}"), 300 & 0xff, "codes are 8 bits");
}

static void test_requests(void)
{
    const char *argv[] = {"/bin/sh", "-c", "echo hi", NULL};
    json_t *env = json_pack("{s:s}", "A", "1");
    json_t *r = e2b_process_start_request(argv, env, "/tmp", "web", true, 80, 24);
    _cleanup_free_ char *s = e2b_json_dump(r, JSON_SORT_KEYS);
    is_str(s, "{\"process\": {\"args\": [\"-c\", \"echo hi\"], \"cmd\": \"/bin/sh\", \"cwd\": \"/tmp\", "
              "\"envs\": {\"A\": \"1\"}}, \"pty\": {\"size\": {\"cols\": 80, \"rows\": 24}}, "
              "\"stdin\": true, \"tag\": \"web\"}",
           "StartRequest with pty, tag, cwd, envs");
    json_decref(r);
    is_int(env->refcount, 1, "the caller's envs are not taken");
    json_decref(env);
    r = e2b_process_start_request(argv, NULL, NULL, NULL, false, 0, 0);
    ok(json_object_size(json_object_get(json_object_get(r, "process"), "envs")) == 0 &&
       !json_object_get(r, "pty") && !json_object_get(r, "tag") &&
       json_is_false(json_object_get(r, "stdin")), "a plain StartRequest");
    json_decref(r);

    is_str(e2b_envd_short_type("FILE_TYPE_DIRECTORY"), "dir", "short type dir");
    is_str(e2b_envd_short_type("EVENT_TYPE_RENAME"), "rename", "short event rename");
    is_str(e2b_envd_short_type("FILE_TYPE_NEW"), "FILE_TYPE_NEW", "unknown enums pass through");
    is_int(e2b_connect_errcode("already_exists"), E2B_ERR_EXISTS, "already_exists");
    is_int(e2b_connect_errcode("unauthenticated"), E2B_ERR_AUTH, "unauthenticated");
    is_int(e2b_connect_errcode("brand_new"), E2B_ERR_API, "an unknown code");
}

/* Nothing listens: a clear network error, not a hang or a crash. */
static void test_unreachable(void)
{
    struct e2b_envd_endpoint ep = {.base = (char *)"unix:/nonexistent/e2b-envd.sock"};
    struct e2b_envd_client c = {.ep = &ep};
    struct e2b_error *err = NULL;
    json_t *list = NULL, *req0 = json_object();
    ok(e2b_envd_unary(&c, "process.Process/List", req0, &list, &err) < 0 && err &&
       err->code == E2B_ERR_NETWORK, "unary call to a missing socket is a network error");
    json_decref(req0);
    e2b_error_free(err);
    err = NULL;
    const char *argv[] = {"true", NULL};
    json_t *req = e2b_process_start_request(argv, NULL, NULL, NULL, false, 0, 0);
    struct e2b_process_events ev = {0};
    ok(e2b_envd_process_start(&c, req, 0, &ev, &err) < 0 && err && err->code == E2B_ERR_NETWORK,
       "stream to a missing socket is a network error");
    json_decref(req);
    e2b_error_free(err);
}

int main(void)
{
    test_splits();
    test_end_errors();
    test_bad_frames();
    test_stop();
    test_envelope();
    test_process_events();
    test_requests();
    test_unreachable();
    return tap_done();
}
