/* imageref.c - see imageref.h */
#include "imageref.h"
#include "envd-crypto.h"

#include <ctype.h>

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN 128

static int bad(struct e2b_error **err, const char *s, const char *why)
{
    return e2b_error_set(err, E2B_ERR_INVALID, "invalid image reference '%s': %s", s, why);
}

bool e2b_digest_valid(const char *d)
{
    if (!d || !e2b_str_has_prefix(d, "sha256:"))
        return false;
    d += 7;
    return e2b_hex_span(d) == 64 && !d[64];
}

/* One path component: [a-z0-9]+ joined by '.', '_', '__' or any run of '-'. */
static bool component_valid(const char *c, size_t n)
{
    if (n == 0)
        return false;
    bool need_alnum = true;
    for (size_t i = 0; i < n;) {
        if (islower((unsigned char)c[i]) || isdigit((unsigned char)c[i])) {
            need_alnum = false;
            i++;
            continue;
        }
        if (need_alnum)
            return false;
        size_t sep = 1;
        if (c[i] == '_' && i + 1 < n && c[i + 1] == '_')
            sep = 2;
        else if (c[i] == '-')
            while (i + sep < n && c[i + sep] == '-')
                sep++;
        else if (c[i] != '.' && c[i] != '_')
            return false;
        i += sep;
        need_alnum = true;
    }
    return !need_alnum;
}

/* host[:port]: DNS labels joined by '.', or an IPv6 address in brackets. */
static const char *domain_invalid(const char *d, size_t n)
{
    size_t hostlen = n;
    const char *colon = NULL;
    if (n && d[0] == '[') {
        const char *close = memchr(d, ']', n);
        if (!close || close == d + 1)
            return "bad IPv6 address in the registry";
        for (const char *p = d + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return "bad IPv6 address in the registry";
        hostlen = (size_t)(close - d) + 1;
        if (hostlen < n) {
            if (d[hostlen] != ':')
                return "bad registry name";
            colon = d + hostlen;
        }
    } else {
        colon = memchr(d, ':', n);
        if (colon)
            hostlen = (size_t)(colon - d);
        if (hostlen == 0)
            return "empty registry host";
        size_t label = 0;
        for (size_t i = 0; i < hostlen; i++) {
            char c = d[i];
            if (c == '.') {
                if (label == 0 || d[i - 1] == '-')
                    return "bad registry host name";
                label = 0;
            } else if (isalnum((unsigned char)c) || (c == '-' && label > 0)) {
                label++;
            } else {
                return "bad registry host name";
            }
        }
        if (label == 0 || d[hostlen - 1] == '-')
            return "bad registry host name";
    }
    if (colon) {
        const char *p = colon + 1, *end = d + n;
        if (p == end)
            return "empty registry port";
        long port = 0;
        for (; p < end; p++) {
            if (!isdigit((unsigned char)*p))
                return "registry port is not a number";
            port = port * 10 + (*p - '0');
            if (port > 65535)
                return "registry port out of range";
        }
        if (port == 0)
            return "registry port out of range";
    }
    return NULL;
}

int e2b_imageref_parse(const char *s, struct e2b_imageref *ret, struct e2b_error **err)
{
    memset(ret, 0, sizeof(*ret));
    if (!s || !*s)
        return e2b_error_set(err, E2B_ERR_INVALID, "invalid image reference '': empty");
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return bad(err, s, "contains white space or control characters");

    _cleanup_free_ char *name = NULL, *tag = NULL, *digest = NULL, *domain = NULL;
    const char *at = strchr(s, '@');
    if (at) {
        if (strchr(at + 1, '@'))
            return bad(err, s, "more than one '@'");
        if (!strchr(at + 1, ':'))
            return bad(err, s, "digest must look like sha256:<hex>");
        if (!e2b_str_has_prefix(at + 1, "sha256:"))
            return bad(err, s, "only sha256 digests are supported");
        if (!e2b_digest_valid(at + 1))
            return bad(err, s, "a sha256 digest is 64 lowercase hex digits");
        digest = xstrdup(at + 1);
        name = xstrndup(s, (size_t)(at - s));
    } else {
        name = xstrdup(s);
    }
    /* The tag is after the last ':' that follows the last '/'. */
    char *slash = strrchr(name, '/');
    char *colon = strrchr(slash ? slash : name, ':');
    if (colon) {
        *colon = '\0';
        const char *t = colon + 1;
        size_t tl = strlen(t);
        if (tl == 0)
            return bad(err, s, "empty tag");
        if (tl > TAG_MAX_LEN)
            return bad(err, s, "tag longer than 128 characters");
        for (size_t i = 0; i < tl; i++)
            if (!isalnum((unsigned char)t[i]) && t[i] != '_' && (i == 0 || (t[i] != '.' && t[i] != '-')))
                return bad(err, s, "tag may hold only letters, digits, '_', '.' and '-' "
                                   "and must not start with '.' or '-'");
        tag = xstrdup(t);
    }
    if (!*name)
        return bad(err, s, "no repository name");

    /* A first component with '.' or ':' in it, or "localhost", is a registry. */
    const char *path = name;
    slash = strchr(name, '/');
    if (slash) {
        size_t fl = (size_t)(slash - name);
        bool is_domain = memchr(name, '.', fl) || memchr(name, ':', fl) ||
                         (fl == 9 && strncmp(name, "localhost", 9) == 0);
        for (size_t i = 0; i < fl && !is_domain; i++)
            if (isupper((unsigned char)name[i]))
                is_domain = true;
        if (is_domain) {
            const char *why = domain_invalid(name, fl);
            if (why)
                return bad(err, s, why);
            domain = xstrndup(name, fl);
            path = slash + 1;
        }
    }
    if (!*path)
        return bad(err, s, "no repository name");
    if (strlen(path) > NAME_MAX_LEN)
        return bad(err, s, "repository name longer than 255 characters");
    for (const char *c = path;;) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        for (size_t i = 0; i < n; i++)
            if (isupper((unsigned char)c[i]))
                return bad(err, s, "repository name must be lowercase");
        if (!component_valid(c, n))
            return bad(err, s, n ? "repository name components are lowercase letters and "
                                   "digits joined by '.', '_', '__' or '-'"
                                 : "empty component in the repository name");
        if (!end)
            break;
        c = end + 1;
    }

    if (!domain || STREQ(domain, "index.docker.io") || STREQ(domain, "registry-1.docker.io")) {
        free(domain);
        domain = xstrdup("docker.io");
    }
    if (STREQ(domain, "docker.io")) {
        ret->host = xstrdup("registry-1.docker.io");
        ret->repo = strchr(path, '/') ? xstrdup(path) : xasprintf("library/%s", path);
    } else {
        ret->host = xstrdup(domain);
        ret->repo = xstrdup(path);
    }
    if (!tag && !digest)
        tag = xstrdup("latest");
    ret->domain = TAKE_PTR(domain);
    ret->tag = TAKE_PTR(tag);
    ret->digest = TAKE_PTR(digest);
    return 0;
}

void e2b_imageref_release(struct e2b_imageref *ref)
{
    free(ref->domain);
    free(ref->host);
    free(ref->repo);
    free(ref->tag);
    free(ref->digest);
    memset(ref, 0, sizeof(*ref));
}

char *e2b_imageref_format(const struct e2b_imageref *ref)
{
    return xasprintf("%s/%s%s%s%s%s", ref->domain, ref->repo, ref->tag ? ":" : "",
                     ref->tag ? ref->tag : "", ref->digest ? "@" : "",
                     ref->digest ? ref->digest : "");
}

const char *e2b_imageref_target(const struct e2b_imageref *ref)
{
    return ref->digest ? ref->digest : ref->tag;
}
