/* fuzz-resp.c - the RESP parser of the Redis client (the cluster catalog's
 * replies, lib/resp.c).
 *
 * Input: one control byte, then a reply stream. Checked: a parsed reply
 * never claims more bytes than it was given; every prefix of those bytes is
 * "incomplete", never a different reply or "malformed"; bulk strings keep
 * their length and a terminating NUL; nesting stays within the bound; and
 * the reply, written back out as RESP, parses again to the same bytes. The
 * control byte picks how many replies are read in a row.
 */
#include "fuzz.h"
#include "resp.h"

#include <string.h>

static void dump(const struct e2b_resp *r, struct strbuf *out, int depth)
{
    FUZZ_ASSERT(depth <= E2B_RESP_MAX_DEPTH);
    switch (r->type) {
    case E2B_RESP_STRING:
        strbuf_addf(out, "+%s\r\n", r->str);
        break;
    case E2B_RESP_ERROR:
        strbuf_addf(out, "-%s\r\n", r->str);
        break;
    case E2B_RESP_INT:
        strbuf_addf(out, ":%lld\r\n", r->integer);
        break;
    case E2B_RESP_NIL:
        strbuf_addstr(out, "$-1\r\n");
        break;
    case E2B_RESP_BULK:
        FUZZ_ASSERT(r->str[r->len] == '\0');
        strbuf_addf(out, "$%zu\r\n", r->len);
        strbuf_add(out, r->str, r->len);
        strbuf_addstr(out, "\r\n");
        break;
    case E2B_RESP_ARRAY:
        strbuf_addf(out, "*%zu\r\n", r->n);
        for (size_t i = 0; i < r->n; i++)
            dump(r->elems[i], out, depth + 1);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned rounds = 1 + data[0] % 4;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    for (unsigned k = 0; k < rounds && len; k++) {
        struct e2b_resp *r = NULL;
        long n = e2b_resp_parse(buf, len, &r);
        if (n <= 0) {
            FUZZ_ASSERT(r == NULL);
            return 0;
        }
        FUZZ_ASSERT((size_t)n <= len);
        /* a shorter prefix is never complete (a few, not all: quadratic) */
        for (size_t cut = 0; cut < (size_t)n; cut += 1 + (size_t)n / 16) {
            struct e2b_resp *p = NULL;
            FUZZ_ASSERT(e2b_resp_parse(buf, cut, &p) == 0);
            FUZZ_ASSERT(p == NULL);
        }
        struct strbuf out = STRBUF_INIT;
        dump(r, &out, 0);
        struct e2b_resp *again = NULL;
        long m = e2b_resp_parse(out.buf, out.len, &again);
        FUZZ_ASSERT(m == (long)out.len);
        struct strbuf out2 = STRBUF_INIT;
        dump(again, &out2, 0);
        FUZZ_ASSERT(out2.len == out.len && memcmp(out.buf, out2.buf, out.len) == 0);
        strbuf_release(&out);
        strbuf_release(&out2);
        e2b_resp_free(again);
        e2b_resp_free(r);
        buf += n, len -= (size_t)n;
    }
    /* and a command written by the client parses back as an array of bulks */
    const char *argv[3] = { "SET", buf, "x" };
    size_t lens[3] = { 3, len, 1 };
    struct strbuf cmd = STRBUF_INIT;
    e2b_resp_command(&cmd, 3, argv, lens);
    struct e2b_resp *c = NULL;
    FUZZ_ASSERT(e2b_resp_parse(cmd.buf, cmd.len, &c) == (long)cmd.len);
    FUZZ_ASSERT(c->type == E2B_RESP_ARRAY && c->n == 3 && c->elems[1]->len == len &&
                (len == 0 || memcmp(c->elems[1]->str, buf, len) == 0));
    e2b_resp_free(c);
    strbuf_release(&cmd);
    return 0;
}
