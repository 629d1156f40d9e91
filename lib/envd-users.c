/* envd-users.c - see envd-users.h */
#include "envd-users.h"

#include <sys/stat.h>

struct pwent {
    char *name;
    uid_t uid;
    gid_t gid;
    char *home;
    char *shell;
};

struct grent {
    char *name;
    gid_t gid;
    char **members;
};

struct dbfile {
    const char *path;
    char *data;
    struct timespec mtime;
    off_t size;
    ino_t ino;
    bool loaded;
};

static const char *passwd_path = "/etc/passwd", *group_path = "/etc/group";
static struct dbfile pw_file, gr_file;
static struct pwent *pws;
static size_t npws;
static struct grent *grs;
static size_t ngrs;
static char numbuf[2][32];

void e2b_users_set_files(const char *passwd, const char *group)
{
    passwd_path = passwd ? passwd : "/etc/passwd";
    group_path = group ? group : "/etc/group";
    pw_file.loaded = gr_file.loaded = false;
}

/* Split a line on ':' in place into at most n fields; returns the count. */
static size_t split(char *line, char sep, char **f, size_t n)
{
    size_t i = 0;
    f[i++] = line;
    for (char *p = line; *p && i < n; p++)
        if (*p == sep) {
            *p = '\0';
            f[i++] = p + 1;
        }
    return i;
}

static bool parse_id(const char *s, unsigned long *ret)
{
    char *end;
    if (!*s)
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || v > 0xfffffffful)
        return false;
    *ret = v;
    return true;
}

/* Returns true when the file was (re)loaded into df->data. */
static bool refresh(struct dbfile *df, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (df->loaded || df->data) {
            free(df->data);
            df->data = NULL;
            df->loaded = true;
            return true;
        }
        df->loaded = true;
        return false;
    }
    if (df->loaded && df->path == path && st.st_mtim.tv_sec == df->mtime.tv_sec &&
        st.st_mtim.tv_nsec == df->mtime.tv_nsec && st.st_size == df->size && st.st_ino == df->ino)
        return false;
    FILE *f = fopen(path, "re");
    free(df->data);
    df->data = NULL;
    if (f) {
        size_t cap = (size_t)st.st_size + 1, len = 0;
        df->data = xmalloc(cap + 1);
        size_t n;
        while ((n = fread(df->data + len, 1, cap - len, f)) > 0) {
            len += n;
            if (len == cap) {
                cap *= 2;
                df->data = xrealloc(df->data, cap + 1);
            }
        }
        df->data[len] = '\0';
        fclose(f);
    }
    df->path = path;
    df->mtime = st.st_mtim;
    df->size = st.st_size;
    df->ino = st.st_ino;
    df->loaded = true;
    return true;
}

static void load(void)
{
    if (refresh(&pw_file, passwd_path)) {
        free(pws);
        pws = NULL;
        npws = 0;
        size_t cap = 0;
        for (char *line = pw_file.data, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            char *f[7];
            unsigned long uid, gid;
            if (split(line, ':', f, 7) < 7 || !*f[0] || !parse_id(f[2], &uid) || !parse_id(f[3], &gid))
                continue;
            if (npws == cap)
                pws = xrealloc(pws, (cap = cap ? cap * 2 : 32) * sizeof(*pws));
            pws[npws++] = (struct pwent){f[0], (uid_t)uid, (gid_t)gid, f[5], f[6]};
        }
    }
    if (refresh(&gr_file, group_path)) {
        for (size_t i = 0; i < ngrs; i++)
            free(grs[i].members);
        free(grs);
        grs = NULL;
        ngrs = 0;
        size_t cap = 0;
        for (char *line = gr_file.data, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            char *f[4];
            unsigned long gid;
            if (split(line, ':', f, 4) < 4 || !*f[0] || !parse_id(f[2], &gid))
                continue;
            char **members = NULL;
            size_t nm = 0;
            for (char *m = f[3], *c; m && *m; m = c) {
                c = strchr(m, ',');
                if (c)
                    *c++ = '\0';
                if (!*m)
                    continue;
                members = xrealloc(members, (nm + 2) * sizeof(char *));
                members[nm++] = m;
                members[nm] = NULL;
            }
            if (ngrs == cap)
                grs = xrealloc(grs, (cap = cap ? cap * 2 : 32) * sizeof(*grs));
            grs[ngrs++] = (struct grent){f[0], (gid_t)gid, members};
        }
    }
}

void e2b_user_free(struct e2b_user *u)
{
    if (!u)
        return;
    free(u->name);
    free(u->home);
    free(u->shell);
    free(u->groups);
    free(u);
}

struct e2b_user *e2b_user_dup(const struct e2b_user *u)
{
    struct e2b_user *c = xcalloc(1, sizeof(*c));
    c->name = xstrdup(u->name);
    c->uid = u->uid;
    c->gid = u->gid;
    c->home = xstrdup(u->home);
    c->shell = xstrdup(u->shell);
    c->ngroups = u->ngroups;
    c->groups = xmalloc((u->ngroups ? u->ngroups : 1) * sizeof(gid_t));
    if (u->ngroups)
        memcpy(c->groups, u->groups, u->ngroups * sizeof(gid_t));
    return c;
}

int e2b_user_lookup(const char *name, struct e2b_user **ret, struct e2b_error **err)
{
    load();
    const struct pwent *pw = NULL;
    for (size_t i = 0; i < npws && !pw; i++)
        if (STREQ(pws[i].name, name))
            pw = &pws[i];
    unsigned long id;
    if (!pw && parse_id(name, &id))
        for (size_t i = 0; i < npws && !pw; i++)
            if (pws[i].uid == id)
                pw = &pws[i];
    if (!pw)
        return e2b_error_set(err, E2B_ERR_AUTH, "user '%s' not found", name);
    struct e2b_user *u = xcalloc(1, sizeof(*u));
    u->name = xstrdup(pw->name);
    u->uid = pw->uid;
    u->gid = pw->gid;
    u->home = xstrdup(*pw->home ? pw->home : "/");
    u->shell = xstrdup(*pw->shell ? pw->shell : "/bin/sh");
    u->groups = xmalloc(sizeof(gid_t));
    u->groups[u->ngroups++] = pw->gid;
    for (size_t i = 0; i < ngrs; i++) {
        if (grs[i].gid == pw->gid)
            continue;
        for (char **m = grs[i].members; m && *m; m++)
            if (STREQ(*m, pw->name)) {
                u->groups = xrealloc(u->groups, (u->ngroups + 1) * sizeof(gid_t));
                u->groups[u->ngroups++] = grs[i].gid;
                break;
            }
    }
    *ret = u;
    return 0;
}

const char *e2b_user_name(uid_t uid)
{
    load();
    for (size_t i = 0; i < npws; i++)
        if (pws[i].uid == uid)
            return pws[i].name;
    snprintf(numbuf[0], sizeof(numbuf[0]), "%u", (unsigned)uid);
    return numbuf[0];
}

const char *e2b_group_name(gid_t gid)
{
    load();
    for (size_t i = 0; i < ngrs; i++)
        if (grs[i].gid == gid)
            return grs[i].name;
    snprintf(numbuf[1], sizeof(numbuf[1]), "%u", (unsigned)gid);
    return numbuf[1];
}
