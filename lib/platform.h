/* platform.h - image platforms, "os/arch[/variant]" as OCI indexes name
 * them: the one this machine runs, checking a user's, and matching an
 * index entry against the one wanted.
 *
 * Matching normalises variants as containerd does: arm64 without a variant
 * is arm64/v8, arm without one is arm/v7; for other architectures a wanted
 * platform without a variant takes any, one with a variant only that one.
 */
#ifndef E2B_PLATFORM_H
#define E2B_PLATFORM_H

#include "error.h"

/* The platform of this binary's architecture ("linux/amd64"), which is what
 * runs here without emulation; NULL for an architecture e2b does not know. */
const char *e2b_host_platform(void);

/* platform, or the host's when NULL; fails (usage) when platform is not
 * os/arch[/variant] or the host's is unknown. */
int e2b_platform_resolve(const char *platform, const char **ret, struct e2b_error **err);

/* Is it os/arch[/variant] with parts of [A-Za-z0-9._-]? */
int e2b_platform_check(const char *platform, struct e2b_error **err);

/* Does an entry (os, arch, variant; variant may be NULL) serve `want`
 * (a checked platform)? */
bool e2b_platform_matches(const char *want, const char *os, const char *arch, const char *variant);

#endif
