/* sha256.h - SHA-256 (FIPS 180-4), streaming, for content digests.
 *
 *   struct e2b_sha256 c; e2b_sha256_init(&c); e2b_sha256_update(&c, p, n);
 *   char hex[E2B_SHA256_HEX]; e2b_sha256_final_hex(&c, hex);
 */
#ifndef E2B_SHA256_H
#define E2B_SHA256_H

#include "error.h"

#define E2B_SHA256_LEN 32
#define E2B_SHA256_HEX 65 /* 64 hex digits and the NUL */

struct e2b_sha256 {
    uint32_t h[8];
    uint64_t total;       /* bytes hashed so far */
    uint8_t block[64];
    size_t fill;          /* bytes waiting in block */
};

void e2b_sha256_init(struct e2b_sha256 *c);
void e2b_sha256_update(struct e2b_sha256 *c, const void *data, size_t len);
void e2b_sha256_final(struct e2b_sha256 *c, uint8_t out[E2B_SHA256_LEN]);
/* Finish and write 64 lowercase hex digits and a NUL to hex. */
void e2b_sha256_final_hex(struct e2b_sha256 *c, char hex[E2B_SHA256_HEX]);
/* One-shot helpers. */
void e2b_sha256_hex(const void *data, size_t len, char hex[E2B_SHA256_HEX]);
void e2b_hex_encode(const uint8_t *bin, size_t len, char *out); /* out: 2*len+1 bytes */
/* Hash a whole file. */
int e2b_sha256_file(const char *path, char hex[E2B_SHA256_HEX], struct e2b_error **err);

#endif
