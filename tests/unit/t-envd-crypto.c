/* t-envd-crypto.c - SHA-256, base64, constant-time compare, /files signatures. */
#include "envd-crypto.h"
#include "envd-files.h"
#include "tap.h"

#include <sys/wait.h>
#include <unistd.h>

static char *hex(const uint8_t *h)
{
    static char out[E2B_SHA256_HEX_SIZE];
    e2b_hex(h, E2B_SHA256_LEN, out);
    return out;
}

/* Digests of every prefix of a pattern (0..299 bytes: each tail and block
 * boundary), and of 1 MiB fed in odd pieces; the expected values are
 * Python's hashlib's. */
static void digests(char out[2][65])
{
    size_t n = 1u << 20;
    uint8_t *d = malloc(n), h[32];
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(i * 7 + i / 251);
    struct e2b_sha256 acc, big;
    e2b_sha256_init(&acc);
    for (size_t len = 0; len < 300; len++) {
        e2b_sha256(d, len, h);
        e2b_sha256_update(&acc, h, 32);
    }
    e2b_sha256_final(&acc, h);
    strcpy(out[0], hex(h));
    e2b_sha256_init(&big);
    for (size_t off = 0, step = 1; off < n; off += step, step = step * 3 % 1021 + 1)
        e2b_sha256_update(&big, d + off, off + step > n ? n - off : step);
    e2b_sha256_final(&big, h);
    strcpy(out[1], hex(h));
    free(d);
}

int main(void)
{
    /* The CPU's SHA instructions where it has them, else the portable
     * rounds; a child forced onto the portable ones must agree. Forked
     * first: the choice is made once per process, at the first digest. */
    int pfd[2];
    if (pipe(pfd) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            char out[2][65];
            setenv("E2B_SHA256_PORTABLE", "1", 1);
            digests(out);
            (void)!write(pfd[1], out, sizeof(out));
            _exit(0);
        }
        close(pfd[1]);
        char mine[2][65], portable[2][65] = {{0}};
        digests(mine);
        ssize_t got = read(pfd[0], portable, sizeof(portable));
        close(pfd[0]);
        waitpid(pid, NULL, 0);
        ok(got == (ssize_t)sizeof(portable), "the portable child answered");
        const char *want[2] = {"7027262f03417d606583169a442595bd35ff31993cd71dd52cc88ed07ef9071e",
                               "07f4465ef6fe98070beaf8d8d01454b5d11f6cd4ff86a139d92cd031b46ddfdc"};
        for (int i = 0; i < 2; i++) {
            is_str(mine[i], want[i], "sha256 %s", i ? "of 1 MiB in odd pieces" : "of every prefix up to 299 bytes");
            is_str(portable[i], want[i], "the same with the portable rounds (%s)", i ? "1 MiB" : "prefixes");
        }
    }
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

    char text[E2B_SHA256_DIGEST_SIZE];
    e2b_hex("\x00\x0f\xa5\xff", 4, text);
    is_str(text, "000fa5ff", "hex: two lowercase digits a byte");
    e2b_hex("", 0, text);
    is_str(text, "", "hex of nothing");
    e2b_sha256_hex("abc", 3, text);
    is_str(text, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
           "sha256 as hex");
    e2b_sha256_init(&c);
    e2b_sha256_update(&c, "abc", 3);
    e2b_sha256_final_digest(&c, text);
    is_str(text, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
           "sha256 as an OCI digest");
    is_int(e2b_hex_span("09afg"), 4, "hex span stops at the first non-digit");
    is_int(e2b_hex_span("0A"), 1, "upper case is not ours");
    is_int(e2b_hex_span(""), 0, "hex span of nothing");

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

    /* HMAC-SHA256, RFC 4231 test cases 1, 2 and 6 (a key longer than a block) */
    struct {
        const char *key, *data, *mac;
        size_t key_len;
    } hm[] = {
        {"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 20},
        {"Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 4},
        {NULL, "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 131},
    };
    uint8_t bigkey[131];
    memset(bigkey, 0xaa, sizeof(bigkey));
    for (size_t i = 0; i < ARRAY_SIZE(hm); i++) {
        struct e2b_hmac_sha256 hc;
        e2b_hmac_sha256_init(&hc, hm[i].key ? (const void *)hm[i].key : bigkey, hm[i].key_len);
        size_t half = strlen(hm[i].data) / 2; /* fed in two pieces */
        e2b_hmac_sha256_update(&hc, hm[i].data, half);
        e2b_hmac_sha256_update(&hc, hm[i].data + half, strlen(hm[i].data) - half);
        uint8_t mac[32];
        e2b_hmac_sha256_final(&hc, mac);
        char hexs[65];
        for (int k = 0; k < 32; k++)
            snprintf(hexs + 2 * k, 3, "%02x", mac[k]);
        is_str(hexs, hm[i].mac, "HMAC-SHA256, RFC 4231 case %zu", i);
    }
    return tap_done();
}
