/* envd-crypto.c - see envd-crypto.h (SHA-256 after FIPS 180-4). */
#include "envd-crypto.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One round with the eight working variables named in place (no shifting
 * them down a register file each round, as a loop over an array would). */
#define ROUND(a, b, c, d, e, f, g, h, i)                                                 \
    do {                                                                                 \
        uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + \
                      K[i] + w[i];                                                       \
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c)); \
        d += t1;                                                                         \
        h = t1 + t2;                                                                     \
    } while (0)

static void blocks_portable(uint32_t st[8], const uint8_t *p, size_t n)
{
    for (; n > 0; n--, p += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = load_be32(p + 4 * i);
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
        for (int i = 0; i < 64; i += 8) {
            ROUND(a, b, c, d, e, f, g, h, i);
            ROUND(h, a, b, c, d, e, f, g, i + 1);
            ROUND(g, h, a, b, c, d, e, f, i + 2);
            ROUND(f, g, h, a, b, c, d, e, i + 3);
            ROUND(e, f, g, h, a, b, c, d, i + 4);
            ROUND(d, e, f, g, h, a, b, c, i + 5);
            ROUND(c, d, e, f, g, h, a, b, i + 6);
            ROUND(b, c, d, e, f, g, h, a, i + 7);
        }
        st[0] += a, st[1] += b, st[2] += c, st[3] += d;
        st[4] += e, st[5] += f, st[6] += g, st[7] += h;
    }
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

/* The SHA extensions (Intel since Goldmont and Ice Lake, AMD since Zen):
 * about 15x the portable rounds, which matters for hashing layers and
 * build contexts. sha256rnds2 does two rounds on the state split as ABEF
 * and CDGH; sha256msg1/msg2 compute the message schedule four words at a
 * time, each group from the four before it. */
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks_shani(uint32_t st[8], const uint8_t *p,
                                                                      size_t n)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[0]), 0xB1);
    __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[4]), 0x1B);
    __m128i abef = _mm_alignr_epi8(dcba, hgfe, 8);
    __m128i cdgh = _mm_blend_epi16(hgfe, dcba, 0xF0);
    for (; n > 0; n--, p += 64) {
        __m128i save0 = abef, save1 = cdgh, m[4];
#pragma GCC unroll 16 /* so that the m[] indexes and the ifs are constants */
        for (int i = 0; i < 16; i++) { /* four rounds each */
            __m128i *cur = &m[i % 4], *prev = &m[(i + 3) % 4], *next = &m[(i + 1) % 4];
            if (i < 4)
                *cur = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
            __m128i wk = _mm_add_epi32(*cur, _mm_loadu_si128((const __m128i *)&K[4 * i]));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
            if (i >= 3 && i < 15) /* words 4(i+1).. from these and the group before */
                *next = _mm_sha256msg2_epu32(_mm_add_epi32(*next, _mm_alignr_epi8(*cur, *prev, 4)), *cur);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
            if (i >= 1 && i < 13) /* the first half of words 4(i+3).. */
                *prev = _mm_sha256msg1_epu32(*prev, *cur);
        }
        abef = _mm_add_epi32(abef, save0);
        cdgh = _mm_add_epi32(cdgh, save1);
    }
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&st[0], _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)&st[4], _mm_alignr_epi8(dchg, feba, 8));
}

static bool cpu_has_sha(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return false;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
}
#endif

/* n whole 64-byte blocks; the implementation is picked at the first call. */
static void blocks(uint32_t st[8], const uint8_t *p, size_t n)
{
    static int shani = -1; /* a benign race: every thread finds the same */
    int have = __atomic_load_n(&shani, __ATOMIC_RELAXED);
    if (have < 0) {
#if defined(__x86_64__)
        have = cpu_has_sha() && !getenv("E2B_SHA256_PORTABLE");
#else
        have = 0;
#endif
        __atomic_store_n(&shani, have, __ATOMIC_RELAXED);
    }
#if defined(__x86_64__)
    if (have) {
        blocks_shani(st, p, n);
        return;
    }
#endif
    blocks_portable(st, p, n);
}

void e2b_sha256_init(struct e2b_sha256 *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof(iv));
    c->len = 0;
    c->fill = 0;
}

void e2b_sha256_update(struct e2b_sha256 *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->len += len;
    if (c->fill) { /* complete the buffered block first */
        size_t n = 64 - c->fill < len ? 64 - c->fill : len;
        memcpy(c->buf + c->fill, p, n);
        c->fill += n;
        p += n;
        len -= n;
        if (c->fill < 64)
            return;
        blocks(c->h, c->buf, 1);
        c->fill = 0;
    }
    if (len >= 64) { /* whole blocks straight from the caller's buffer */
        blocks(c->h, p, len / 64);
        p += len / 64 * 64;
        len %= 64;
    }
    memcpy(c->buf, p, len);
    c->fill = len;
}

void e2b_sha256_final(struct e2b_sha256 *c, uint8_t out[E2B_SHA256_LEN])
{
    uint64_t bits = c->len * 8;
    uint8_t pad = 0x80;
    e2b_sha256_update(c, &pad, 1);
    pad = 0;
    while (c->fill != 56)
        e2b_sha256_update(c, &pad, 1);
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
    e2b_sha256_update(c, lenb, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void e2b_sha256(const void *data, size_t len, uint8_t out[E2B_SHA256_LEN])
{
    struct e2b_sha256 c;
    e2b_sha256_init(&c);
    e2b_sha256_update(&c, data, len);
    e2b_sha256_final(&c, out);
}

void e2b_hex(const void *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

size_t e2b_hex_span(const char *s)
{
    size_t n = 0;
    while ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))
        n++;
    return n;
}

void e2b_sha256_final_hex(struct e2b_sha256 *c, char out[E2B_SHA256_HEX_SIZE])
{
    uint8_t d[E2B_SHA256_LEN];
    e2b_sha256_final(c, d);
    e2b_hex(d, sizeof(d), out);
}

void e2b_sha256_hex(const void *data, size_t len, char out[E2B_SHA256_HEX_SIZE])
{
    uint8_t d[E2B_SHA256_LEN];
    e2b_sha256(data, len, d);
    e2b_hex(d, sizeof(d), out);
}

void e2b_sha256_final_digest(struct e2b_sha256 *c, char out[E2B_SHA256_DIGEST_SIZE])
{
    strcpy(out, "sha256:");
    e2b_sha256_final_hex(c, out + 7);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void e2b_hmac_sha256_init(struct e2b_hmac_sha256 *h, const void *key, size_t key_len)
{
    uint8_t k[64] = {0}, ipad[64];
    if (key_len > sizeof(k))
        e2b_sha256(key, key_len, k);
    else if (key_len)
        memcpy(k, key, key_len);
    for (size_t i = 0; i < sizeof(k); i++) {
        ipad[i] = k[i] ^ 0x36;
        h->okey[i] = k[i] ^ 0x5c;
    }
    e2b_sha256_init(&h->inner);
    e2b_sha256_update(&h->inner, ipad, sizeof(ipad));
}

void e2b_hmac_sha256_update(struct e2b_hmac_sha256 *h, const void *data, size_t len)
{
    e2b_sha256_update(&h->inner, data, len);
}

void e2b_hmac_sha256_final(struct e2b_hmac_sha256 *h, uint8_t out[E2B_SHA256_LEN])
{
    uint8_t in[E2B_SHA256_LEN];
    e2b_sha256_final(&h->inner, in);
    struct e2b_sha256 outer;
    e2b_sha256_init(&outer);
    e2b_sha256_update(&outer, h->okey, sizeof(h->okey));
    e2b_sha256_update(&outer, in, sizeof(in));
    e2b_sha256_final(&outer, out);
}

char *e2b_base64_encode(const void *data, size_t len, bool pad)
{
    const uint8_t *p = data;
    char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = B64[(v >> 6) & 63];
        *o++ = B64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        if (i + 1 < len)
            *o++ = B64[(v >> 6) & 63];
        else if (pad)
            *o++ = '=';
        if (pad)
            *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

ssize_t e2b_base64_decode(const char *s, size_t len, uint8_t **ret)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    uint8_t *out = xmalloc(len / 4 * 3 + 3), *o = out;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(s[i]);
        if (v < 0) {
            free(out);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (uint8_t)(acc >> bits);
        }
    }
    *o = 0;
    *ret = out;
    return o - out;
}

bool e2b_consttime_streq(const char *a, const char *b)
{
    /* The loop runs over `a` (the caller's untrusted input), never stopping
     * early, so the time does not tell how much of the secret matched. */
    size_t la = strlen(a), lb = strlen(b);
    unsigned d = la != lb;
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)a[i] ^ (i < lb ? (unsigned char)b[i] : 0u);
    return d == 0;
}
