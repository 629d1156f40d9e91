/* t-envd-crypto.c - SHA-256, base64, constant-time compare, /files signatures. */
#include "envd-crypto.h"
#include "envd-files.h"
#include "tap.h"

static char *hex(const uint8_t *h)
{
    static char out[65];
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
    return out;
}

int main(void)
{
    uint8_t h[32];
    e2b_sha256("", 0, h);
    is_str(hex(h), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256 of empty");
    e2b_sha256("abc", 3, h);
    is_str(hex(h), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 of abc");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    e2b_sha256(two, strlen(two), h);
    is_str(hex(h), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "sha256 two blocks");
    struct e2b_sha256 c;
    e2b_sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        e2b_sha256_update(&c, "a", 1);
    e2b_sha256_final(&c, h);
    uint8_t h2[32];
    char thousand[1001];
    memset(thousand, 'a', 1000);
    e2b_sha256(thousand, 1000, h2);
    ok(memcmp(h, h2, 32) == 0, "incremental equals one-shot");

    char *s = e2b_base64_encode("hello", 5, true);
    is_str(s, "aGVsbG8=", "base64 padded");
    free(s);
    s = e2b_base64_encode("hello", 5, false);
    is_str(s, "aGVsbG8", "base64 unpadded");
    free(s);
    s = e2b_base64_encode("", 0, true);
    is_str(s, "", "base64 empty");
    free(s);
    uint8_t *d = NULL;
    is_int(e2b_base64_decode("aGVsbG8=", 8, &d), 5, "decode padded");
    is_str((char *)d, "hello", "decoded text");
    free(d);
    is_int(e2b_base64_decode("aGVsbG8", 7, &d), 5, "decode unpadded");
    free(d);
    is_int(e2b_base64_decode("a-_b", 4, &d), 3, "decode url-safe alphabet");
    free(d);
    is_int(e2b_base64_decode("a$bc", 4, &d), -1, "bad character refused");
    is_int(e2b_base64_decode("abcde", 5, &d), -1, "bad length refused");

    ok(e2b_consttime_streq("secret", "secret"), "equal strings");
    ok(!e2b_consttime_streq("secret", "secreT"), "different strings");
    ok(!e2b_consttime_streq("secret", "secret2"), "prefix is not equal");
    ok(!e2b_consttime_streq("", "x"), "empty vs non-empty");

    /* base64-nopad(sha256("/a.txt:read:user:tok")) */
    char *sig = e2b_files_signature("/a.txt", "read", "user", "tok", 0);
    uint8_t hh[32];
    e2b_sha256("/a.txt:read:user:tok", 20, hh);
    char *b = e2b_base64_encode(hh, 32, false);
    char *want = xasprintf("v1_%s", b);
    is_str(sig, want, "signature without expiration");
    free(sig);
    free(b);
    free(want);
    sig = e2b_files_signature("/a.txt", "write", "", "tok", 1700000000);
    e2b_sha256("/a.txt:write::tok:1700000000", 28, hh);
    b = e2b_base64_encode(hh, 32, false);
    want = xasprintf("v1_%s", b);
    is_str(sig, want, "signature with expiration and no user");
    ok(!strchr(sig, '='), "no padding");
    free(sig);
    free(b);
    free(want);
    return tap_done();
}
