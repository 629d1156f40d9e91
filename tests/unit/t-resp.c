/* t-resp.c - RESP2: replies of every type, whole and in pieces, bounds, commands. */
#include "resp.h"
#include "tap.h"

static struct e2b_resp *one(const char *s, long *used)
{
    struct e2b_resp *r = NULL;
    *used = e2b_resp_parse(s, strlen(s), &r);
    return r;
}

int main(void)
{
    long n;
    struct e2b_resp *r = one("+OK\r\n", &n);
    ok(n == 5 && r && r->type == E2B_RESP_STRING && strcmp(e2b_resp_str(r), "OK") == 0,
       "simple string");
    e2b_resp_free(r);
    r = one("-ERR wrong number of arguments\r\n", &n);
    ok(r && r->type == E2B_RESP_ERROR && strstr(r->str, "wrong number") && !e2b_resp_str(r),
       "error, not a string");
    e2b_resp_free(r);
    r = one(":-42\r\n", &n);
    ok(r && r->type == E2B_RESP_INT && r->integer == -42, "integer");
    e2b_resp_free(r);
    static const char bulk[] = "$5\r\na\0b\r\n\r\n";
    r = NULL;
    n = e2b_resp_parse(bulk, sizeof(bulk) - 1, &r);
    ok(n == (long)sizeof(bulk) - 1 && r->type == E2B_RESP_BULK && r->len == 5 &&
           memcmp(r->str, "a\0b\r\n", 5) == 0 && r->str[5] == '\0',
       "bulk strings are binary-safe");
    e2b_resp_free(r);
    r = one("$-1\r\n", &n);
    ok(r && r->type == E2B_RESP_NIL && !e2b_resp_str(r), "nil bulk");
    e2b_resp_free(r);
    r = one("*3\r\n$4\r\nnode\r\n$-1\r\n*1\r\n:7\r\n", &n);
    ok(r && r->type == E2B_RESP_ARRAY && r->n == 3 &&
           strcmp(e2b_resp_str(e2b_resp_elem(r, 0)), "node") == 0 &&
           e2b_resp_elem(r, 1)->type == E2B_RESP_NIL &&
           e2b_resp_elem(e2b_resp_elem(r, 2), 0)->integer == 7 && !e2b_resp_elem(r, 3),
       "nested arrays");
    e2b_resp_free(r);
    /* every cut of a reply is incomplete, never another reply or an error */
    static const char full[] = "*2\r\n$3\r\nabc\r\n+x\r\n";
    bool cuts = true;
    for (size_t i = 0; i < sizeof(full) - 1; i++) {
        r = NULL;
        cuts &= e2b_resp_parse(full, i, &r) == 0 && !r;
    }
    ok(cuts, "every prefix is incomplete");
    r = one("+a\r\n+b\r\n", &n);
    ok(n == 4 && strcmp(r->str, "a") == 0, "one reply at a time from a stream");
    e2b_resp_free(r);
    static const char *const bad[] = {
        "?x\r\n",  "+a\rb\r\n",      "+a\n",    ":12a\r\n",
        "$-2\r\n", "$3\r\nabcd\r\n", "*-5\r\n", "$99999999999999999999\r\n",
        ":\r\n",   "$67108865\r\n",  NULL
    };
    bool refused = true;
    for (const char *const *b = bad; *b; b++) {
        r = NULL;
        long k = e2b_resp_parse(*b, strlen(*b), &r);
        if (k >= 0)
            diag("accepted %s", *b);
        refused &= k < 0 && !r;
    }
    ok(refused, "malformed replies are refused");
    /* nesting past the bound */
    struct strbuf deep = STRBUF_INIT;
    for (int i = 0; i < E2B_RESP_MAX_DEPTH + 2; i++)
        strbuf_addstr(&deep, "*1\r\n");
    strbuf_addstr(&deep, ":1\r\n");
    r = NULL;
    ok(e2b_resp_parse(deep.buf, deep.len, &r) < 0 && !r, "arrays deeper than %d are refused",
       E2B_RESP_MAX_DEPTH);
    strbuf_release(&deep);
    r = NULL;
    ok(e2b_resp_parse("*1000000\r\n", 10, &r) == 0 && !r,
       "a large count is not allocated before its elements come");
    /* commands */
    struct strbuf cmd = STRBUF_INIT;
    const char *argv[] = { "HSET", "e2b:sbx:x", "node", "a b\r\nc" };
    e2b_resp_command(&cmd, 4, argv, NULL);
    is_str(cmd.buf, "*4\r\n$4\r\nHSET\r\n$9\r\ne2b:sbx:x\r\n$4\r\nnode\r\n$6\r\na b\r\nc\r\n",
           "a command as bulk strings");
    r = NULL;
    ok(e2b_resp_parse(cmd.buf, cmd.len, &r) == (long)cmd.len && r->n == 4 && r->elems[3]->len == 6,
       "and it parses back");
    e2b_resp_free(r);
    strbuf_release(&cmd);
    return tap_done();
}
