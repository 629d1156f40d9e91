/* platform.c - see platform.h */
#include "platform.h"

#include <ctype.h>

const char *e2b_host_platform(void)
{
#if defined(__x86_64__)
    return "linux/amd64";
#elif defined(__aarch64__)
    return "linux/arm64";
#elif defined(__arm__) && defined(__ARM_ARCH_7A__)
    return "linux/arm/v7";
#elif defined(__i386__)
    return "linux/386";
#elif defined(__riscv) && __riscv_xlen == 64
    return "linux/riscv64";
#elif defined(__s390x__)
    return "linux/s390x";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "linux/ppc64le";
#else
    return NULL;
#endif
}

int e2b_platform_check(const char *platform, struct e2b_error **err)
{
    int parts = 1;
    bool bad = !*platform;
    for (const char *p = platform; *p; p++) {
        if (*p == '/') {
            parts++;
            if (p == platform || !p[1] || p[1] == '/')
                bad = true;
        } else if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') {
            bad = true;
        }
    }
    if (bad || parts < 2 || parts > 3)
        return e2b_error_set(err, E2B_ERR_USAGE,
                             "invalid platform '%s': expected os/arch[/variant], e.g. linux/arm64", platform);
    return 0;
}

int e2b_platform_resolve(const char *platform, const char **ret, struct e2b_error **err)
{
    if (!platform && !(platform = e2b_host_platform()))
        return e2b_error_set(err, E2B_ERR_USAGE,
                             "this machine's architecture is not one e2b knows; name the image platform "
                             "(--platform os/arch[/variant])");
    if (e2b_platform_check(platform, err) < 0)
        return -1;
    *ret = platform;
    return 0;
}

static const char *norm_variant(const char *arch, size_t alen, const char *variant, size_t vlen)
{
    if (vlen)
        return NULL; /* compare as given */
    if (alen == 5 && !memcmp(arch, "arm64", 5))
        return "v8";
    if (alen == 3 && !memcmp(arch, "arm", 3))
        return "v7";
    return "";
}

static bool variant_eq(const char *a, size_t alen, const char *av, size_t avlen, const char *bv, size_t bvlen)
{
    const char *na = norm_variant(a, alen, av, avlen), *nb = norm_variant(a, alen, bv, bvlen);
    if (na) {
        av = na;
        avlen = strlen(na);
    }
    if (nb) {
        bv = nb;
        bvlen = strlen(nb);
    }
    return avlen == bvlen && !memcmp(av, bv, avlen);
}

bool e2b_platform_matches(const char *want, const char *os, const char *arch, const char *variant)
{
    const char *s1 = strchr(want, '/');
    if (!s1 || !os || !arch)
        return false;
    const char *w_arch = s1 + 1, *s2 = strchr(w_arch, '/');
    size_t w_alen = s2 ? (size_t)(s2 - w_arch) : strlen(w_arch);
    const char *w_var = s2 ? s2 + 1 : "";
    if (strlen(os) != (size_t)(s1 - want) || memcmp(os, want, (size_t)(s1 - want)))
        return false;
    if (strlen(arch) != w_alen || memcmp(arch, w_arch, w_alen))
        return false;
    bool arm = (w_alen == 3 && !memcmp(w_arch, "arm", 3)) || (w_alen == 5 && !memcmp(w_arch, "arm64", 5));
    if (!s2 && !arm)
        return true; /* amd64 asked for: amd64/v2, v3 ... serve it too */
    return variant_eq(arch, w_alen, w_var, strlen(w_var), variant ? variant : "", variant ? strlen(variant) : 0);
}
