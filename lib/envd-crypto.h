/* envd-crypto.h - SHA-256 and its hex digests, HMAC-SHA256, base64
 * (standard alphabet), constant-time compare.
 *
 * Small enough to carry in the static envd; used for /files signatures and
 * for the bytes fields of Connect JSON messages (proto3 maps bytes to base64),
 * and on the host for layer, blob and build-context digests: there SHA-256
 * runs on the CPU's SHA instructions where it has them (1.4 GB/s here, the
 * portable rounds 0.26 GB/s). E2B_SHA256_PORTABLE=1 forces the portable ones.
 */
#ifndef E2B_ENVD_CRYPTO_H
#define E2B_ENVD_CRYPTO_H

#include "util.h"

#define E2B_SHA256_LEN 32

struct e2b_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t fill;
};

void e2b_sha256_init(struct e2b_sha256 *c);
void e2b_sha256_update(struct e2b_sha256 *c, const void *data, size_t len);
void e2b_sha256_final(struct e2b_sha256 *c, uint8_t out[E2B_SHA256_LEN]);
void e2b_sha256(const void *data, size_t len, uint8_t out[E2B_SHA256_LEN]);

/* Digests as text, the one way they are written: lowercase hex, and the
 * OCI digest form "sha256:<hex>" (blobs, diff_ids, image IDs, ADD --checksum). */
#define E2B_SHA256_HEX_SIZE    65 /* 64 hex digits and the NUL */
#define E2B_SHA256_DIGEST_SIZE 72 /* "sha256:", 64 hex digits and the NUL */
void e2b_sha256_final_hex(struct e2b_sha256 *c, char out[E2B_SHA256_HEX_SIZE]);
void e2b_sha256_hex(const void *data, size_t len, char out[E2B_SHA256_HEX_SIZE]);
void e2b_sha256_final_digest(struct e2b_sha256 *c, char out[E2B_SHA256_DIGEST_SIZE]);
/* Lowercase hex of len bytes into out (2 * len + 1 bytes, NUL-terminated). */
void e2b_hex(const void *data, size_t len, char *out);
/* How many lowercase hex digits s starts with. */
size_t e2b_hex_span(const char *s);

/* HMAC-SHA256 (RFC 2104), fed in pieces: Jupyter signs a message over its
 * four JSON frames in turn. */
struct e2b_hmac_sha256 {
    struct e2b_sha256 inner;
    uint8_t okey[64]; /* the key xor opad */
};

void e2b_hmac_sha256_init(struct e2b_hmac_sha256 *h, const void *key, size_t key_len);
void e2b_hmac_sha256_update(struct e2b_hmac_sha256 *h, const void *data, size_t len);
void e2b_hmac_sha256_final(struct e2b_hmac_sha256 *h, uint8_t out[E2B_SHA256_LEN]);

/* Encode len bytes; pad selects '=' padding. Returns a malloc'd string. */
char *e2b_base64_encode(const void *data, size_t len, bool pad);
/* Decode standard or URL-safe base64, padded or not; whitespace is refused.
 * Returns the decoded length, or -1 on bad input. *ret is malloc'd (NUL-terminated). */
ssize_t e2b_base64_decode(const char *s, size_t len, uint8_t **ret);

/* Compare without leaking where the first difference is. */
bool e2b_consttime_streq(const char *a, const char *b);

#endif
