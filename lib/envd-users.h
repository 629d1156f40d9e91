/* envd-users.h - users and groups from /etc/passwd and /etc/group.
 *
 * envd is static, and static glibc's NSS (getpwnam) is unreliable, so the
 * files are parsed here. They are re-read when they change on disk.
 */
#ifndef E2B_ENVD_USERS_H
#define E2B_ENVD_USERS_H

#include "error.h"
#include <sys/types.h>

struct e2b_user {
    char *name;
    uid_t uid;
    gid_t gid;
    char *home;
    char *shell;
    gid_t *groups; /* supplementary groups, including gid */
    size_t ngroups;
};

/* Look a user up by name (a numeric name is taken as a uid). */
int e2b_user_lookup(const char *name, struct e2b_user **ret, struct e2b_error **err);
void e2b_user_free(struct e2b_user *u);
/* A copy to keep (a watcher acts as its user for as long as it lives). */
struct e2b_user *e2b_user_dup(const struct e2b_user *u);
static inline void e2b_user_freep(struct e2b_user **u) { e2b_user_free(*u); }
#define _cleanup_user_ _cleanup_(e2b_user_freep)

/* Names for ids; fall back to the number as text. Returned strings live until
 * the next call that re-reads the files (copy them if you keep them). */
const char *e2b_user_name(uid_t uid);
const char *e2b_group_name(gid_t gid);

/* Override the file locations (tests). NULL restores the defaults. */
void e2b_users_set_files(const char *passwd, const char *group);

#endif
