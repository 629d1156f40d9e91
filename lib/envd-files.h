/* envd-files.h - GET/POST /files: streamed downloads and uploads (multipart
 * or octet-stream, gzip either way), X-Metadata-* as user.e2b.* xattrs, and
 * signed URLs ("v1_" + base64-nopad(sha256(path:op:user:token[:exp]))). */
#ifndef E2B_ENVD_FILES_H
#define E2B_ENVD_FILES_H

#include "envd-server.h"

void e2b_files_handle(struct e2b_http_req *req);
/* The signature for a /files URL; caller frees. expiration <= 0: none. */
char *e2b_files_signature(const char *path, const char *op, const char *user, const char *token,
                          int64_t expiration);

#endif
