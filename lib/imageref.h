/* imageref.h - container image references ("debian:12", "host:5000/a/b@sha256:..").
 *
 * The grammar is the one Docker and the OCI tools accept: an optional
 * registry (a first component with a '.' or ':' in it, or "localhost"),
 * lowercase path components separated by '/', an optional ":tag" and an
 * optional "@sha256:<64 hex>". Docker Hub names get their defaults: no
 * registry means docker.io, a single component gets "library/", and the
 * API host of docker.io is registry-1.docker.io. No tag and no digest
 * means ":latest".
 */
#ifndef E2B_IMAGEREF_H
#define E2B_IMAGEREF_H

#include "error.h"

struct e2b_imageref {
    char *domain;   /* "docker.io", "127.0.0.1:5000", "[::1]:5000" */
    char *host;     /* where the API is: "registry-1.docker.io" for docker.io, else domain */
    char *repo;     /* "library/debian" */
    char *tag;      /* "12"; "latest" when neither tag nor digest was given; NULL if only a digest */
    char *digest;   /* "sha256:<hex>" or NULL */
};

/* Parse s; errors read "invalid image reference 's': <why>". */
int e2b_imageref_parse(const char *s, struct e2b_imageref *ret, struct e2b_error **err);
void e2b_imageref_release(struct e2b_imageref *ref);
/* The full name: "docker.io/library/debian:12", "h:5000/r@sha256:..",
 * with both tag and digest when both were given. Caller frees. */
char *e2b_imageref_format(const struct e2b_imageref *ref);
/* What to ask the registry for: the digest if there is one, else the tag. */
const char *e2b_imageref_target(const struct e2b_imageref *ref);

/* "sha256:<64 lowercase hex>"? (The only digest algorithm supported.) */
bool e2b_digest_valid(const char *digest);

#endif
