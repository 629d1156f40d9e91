/* t-envd-connect.c - Connect framing, codes, proto3 JSON readers, timestamps. */
#include "envd-connect.h"
#include "tap.h"

int main(void)
{
    is_str(e2b_rpc_code_name(RPC_NOT_FOUND), "not_found", "code name");
    is_str(e2b_rpc_code_name(RPC_UNAUTHENTICATED), "unauthenticated", "last code name");
    is_int(e2b_rpc_code_http(RPC_INVALID_ARGUMENT), 400, "invalid_argument is 400");
    is_int(e2b_rpc_code_http(RPC_UNAUTHENTICATED), 401, "unauthenticated is 401");
    is_int(e2b_rpc_code_http(RPC_PERMISSION_DENIED), 403, "permission_denied is 403");
    is_int(e2b_rpc_code_http(RPC_NOT_FOUND), 404, "not_found is 404");
    is_int(e2b_rpc_code_http(RPC_ALREADY_EXISTS), 409, "already_exists is 409");
    is_int(e2b_rpc_code_http(RPC_RESOURCE_EXHAUSTED), 429, "resource_exhausted is 429");
    is_int(e2b_rpc_code_http(RPC_CANCELED), 499, "canceled is 499");
    is_int(e2b_rpc_code_http(RPC_UNIMPLEMENTED), 501, "unimplemented is 501");
    is_int(e2b_rpc_code_http(RPC_UNAVAILABLE), 503, "unavailable is 503");
    is_int(e2b_rpc_code_http(RPC_DEADLINE_EXCEEDED), 504, "deadline_exceeded is 504");
    is_int(e2b_rpc_code_http(RPC_FAILED_PRECONDITION), 400, "failed_precondition is 400");
    is_int(e2b_rpc_code_http(RPC_INTERNAL), 500, "internal is 500");
    is_int(e2b_rpc_code_from_errno(ENOENT), RPC_NOT_FOUND, "ENOENT");
    is_int(e2b_rpc_code_from_errno(EACCES), RPC_PERMISSION_DENIED, "EACCES");
    is_int(e2b_rpc_code_from_errno(ENOSPC), RPC_RESOURCE_EXHAUSTED, "ENOSPC");

    json_t *msg = json_pack("{s:s}", "a", "b");
    struct strbuf b = STRBUF_INIT;
    e2b_rpc_frame(&b, E2B_RPC_FLAG_END, msg);
    is_int(b.len, 5 + 9, "frame length");
    is_int((unsigned char)b.buf[0], 2, "end flag");
    is_int((unsigned char)b.buf[4], 9, "big-endian length");
    unsigned flags;
    const char *payload;
    size_t plen;
    is_int(e2b_rpc_unframe(b.buf, b.len, &flags, &payload, &plen), 14, "unframe whole");
    ok(flags == 2 && plen == 9 && memcmp(payload, "{\"a\":\"b\"}", 9) == 0, "payload back");
    is_int(e2b_rpc_unframe(b.buf, 4, &flags, &payload, &plen), 0, "short header waits");
    is_int(e2b_rpc_unframe(b.buf, 10, &flags, &payload, &plen), 0, "short payload waits");
    is_int(e2b_rpc_unframe("\0\x7f\xff\xff\xff", 5, &flags, &payload, &plen), -1, "huge frame refused");
    strbuf_release(&b);
    json_decref(msg);

    json_t *end = e2b_rpc_end_message(RPC_OK, NULL, NULL);
    _cleanup_free_ char *e1 = e2b_json_dump(end, JSON_COMPACT | JSON_SORT_KEYS);
    is_str(e1, "{}", "a clean end is {}");
    json_decref(end);
    end = e2b_rpc_end_message(RPC_NOT_FOUND, "gone", json_pack("{s:s,s:[s,s],s:i,s:s}", "x-one", "1", "x-two",
                                                                 "a", "b", "x-bad", 3, "bad name", "v"));
    _cleanup_free_ char *e2 = e2b_json_dump(end, JSON_COMPACT | JSON_SORT_KEYS);
    is_str(e2, "{\"error\":{\"code\":\"not_found\",\"message\":\"gone\"},\"metadata\":{\"x-one\":[\"1\"],\"x-two\":[\"a\",\"b\"]}}",
           "error and metadata, values as string arrays, bad entries dropped");
    json_decref(end);

    struct e2b_error *err = NULL;
    json_t *o = json_loads("{\"path\":\"/x\",\"depth\":\"3\",\"watcher_id\":\"w\",\"n\":-1,\"f\":1.5,"
                           "\"b\":true,\"s\":5,\"nul\":null,\"bytes\":\"aGk=\",\"bad\":\"!\"}",
                           0, NULL);
    const char *s = NULL;
    ok(e2b_pj_str(o, "path", NULL, &s, &err) == 0 && s && STREQ(s, "/x"), "string field");
    s = NULL;
    ok(e2b_pj_str(o, "watcherId", "watcher_id", &s, &err) == 0 && s && STREQ(s, "w"), "proto name fallback");
    s = "keep";
    ok(e2b_pj_str(o, "nul", NULL, &s, &err) == 0 && STREQ(s, "keep"), "null is absent");
    ok(e2b_pj_str(o, "s", NULL, &s, &err) < 0 && err, "number for a string fails");
    e2b_error_free(err);
    err = NULL;
    uint32_t u = 0;
    bool present = false;
    ok(e2b_pj_u32(o, "depth", NULL, &u, &present, &err) == 0 && u == 3 && present, "uint32 as string");
    ok(e2b_pj_u32(o, "n", NULL, &u, NULL, &err) < 0, "negative uint32 fails");
    e2b_error_free(err);
    err = NULL;
    ok(e2b_pj_u32(o, "f", NULL, &u, NULL, &err) < 0, "fraction fails");
    e2b_error_free(err);
    err = NULL;
    ok(e2b_pj_u32(o, "missing", NULL, &u, &present, &err) == 0 && !present, "absent uint32");
    /* reals out of long long's range (found by fuzz-connect under clang's UBSan) */
    json_t *reals = json_loads("{\"huge\": 1e300, \"neg\": -1e300, \"max\": 4294967295.0, \"over\": 4294967296.0}", 0, NULL);
    ok(e2b_pj_u32(reals, "huge", NULL, &u, NULL, &err) < 0, "1e300 is no uint32");
    e2b_error_free(err);
    err = NULL;
    ok(e2b_pj_u32(reals, "neg", NULL, &u, NULL, &err) < 0, "-1e300 is no uint32");
    e2b_error_free(err);
    err = NULL;
    ok(e2b_pj_u32(reals, "max", NULL, &u, NULL, &err) == 0 && u == 4294967295u, "4294967295.0 is");
    ok(e2b_pj_u32(reals, "over", NULL, &u, NULL, &err) < 0, "4294967296.0 is not");
    e2b_error_free(err);
    err = NULL;
    json_decref(reals);
    bool bv = false;
    ok(e2b_pj_bool(o, "b", NULL, &bv, &err) == 0 && bv, "bool");
    ok(e2b_pj_bool(o, "path", NULL, &bv, &err) < 0, "string for a bool fails");
    e2b_error_free(err);
    err = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    ok(e2b_pj_bytes(o, "bytes", NULL, &data, &len, &present, &err) == 0 && len == 2 && memcmp(data, "hi", 2) == 0,
       "bytes");
    free(data);
    ok(e2b_pj_bytes(o, "bad", NULL, &data, &len, &present, &err) < 0, "bad base64 fails");
    e2b_error_free(err);
    json_decref(o);

    char *t = e2b_rpc_timestamp(0, 0);
    is_str(t, "1970-01-01T00:00:00Z", "epoch");
    free(t);
    t = e2b_rpc_timestamp(1700000000, 123000000);
    is_str(t, "2023-11-14T22:13:20.123Z", "millis");
    free(t);
    t = e2b_rpc_timestamp(1700000000, 123456789);
    is_str(t, "2023-11-14T22:13:20.123456789Z", "nanos");
    free(t);

    /* messages made of request bytes that are not UTF-8 (found by fuzz-envd-http) */
    static const struct {
        const char *in, *want, *name;
    } lossy[] = {
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "valid UTF-8 stays"},
        {"/x\xff", "/x\xef\xbf\xbd", "a stray byte becomes U+FFFD"},
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd", "an overlong '/' is two bad bytes"},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "a surrogate is three"},
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "past U+10FFFF is four"},
        {"a\xe2\x82", "a\xef\xbf\xbd\xef\xbf\xbd", "a sequence cut at the end"},
    };
    for (size_t i = 0; i < sizeof(lossy) / sizeof(lossy[0]); i++) {
        json_t *js = e2b_json_string_lossy(lossy[i].in);
        is_str(json_string_value(js), lossy[i].want, "%s", lossy[i].name);
        json_decref(js);
    }
    json_t *ej = e2b_rpc_error_json(RPC_NOT_FOUND, "cannot open '/x\xff'");
    is_str(json_string_value(json_object_get(ej, "message")), "cannot open '/x\xef\xbf\xbd'",
           "an error message with a byte that is not UTF-8 keeps the rest");
    json_decref(ej);
    return tap_done();
}
