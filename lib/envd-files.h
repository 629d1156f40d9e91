/* envd-files.h - GET/POST /files: streamed downloads and uploads (multipart
 * or octet-stream, gzip either way), X-Metadata-* as user.e2b.* xattrs, and
 * signed URLs ("v1_" + base64-nopad(sha256(path:op:user:token[:exp]))). */
#ifndef E2B_ENVD_FILES_H
#define E2B_ENVD_FILES_H

#include "envd-state.h"

void e2b_files_handle(struct e2b_http_req *req);
/* The signature for a /files URL; caller frees. expiration <= 0: none. */
char *e2b_files_signature(const char *path, const char *op, const char *user, const char *token,
                          int64_t expiration);
/* The Content-Disposition value for downloading a file called name: a
 * quoted filename when the name is plain printable ASCII, else an ASCII
 * fallback plus RFC 6266 filename*=UTF-8''<percent-encoded> (so a name
 * with CR/LF or quotes can never break out of the header). Caller frees. */
char *e2b_files_content_disposition(const char *name);
/* Whether a directory entry is the temp file of an upload in progress
 * (".NAME.e2b-upload-XXXXXX"; renamed over NAME when complete). Watchers
 * leave these out: the finished file shows up under its own name. */
bool e2b_files_is_upload_temp(const char *name);

#endif
