/* volume-store.h - volumes: named storage that outlives sandboxes (E2B's
 * /volumes and /volumecontent), and the files in them.
 *
 * Layout under <data dir>/volumes:
 *   <volumeID>/volume.json  {volumeID, name, token, quotaMB, createdAt,
 *                            storage: "ext4" | "dir"} (0600)
 *   <volumeID>/volume.img   the volume's own ext4 file system, quotaMB in
 *                           size (sparse): the kernel holds every writer to
 *                           the quota, the content API and sandboxes alike
 *   <volumeID>/fs/          where it is mounted (a loop device, autoclear)
 *                           in this machine's mount namespace, on first use
 *                           after a boot; sandboxes get a bind mount of it
 *   <volumeID>/lock         shared while a sandbox is being created on the
 *                           volume, exclusive while it is deleted or a VM
 *                           claims it
 *   <volumeID>/holder       the sandbox whose VM has the image (a claim),
 *                           valid while that sandbox exists
 *   .lock                   serialises creates and deletes (unique names)
 * Without root there are no loop devices: fs/ is a plain directory
 * ("storage": "dir") and only the content API enforces the quota (said in
 * the volume's "limits").
 *
 * Paths in a volume are relative to its root ("/" is the root); a ".."
 * component is refused, and every path is resolved beneath the root
 * (openat2 RESOLVE_BENEATH): a symlink that leads out is refused, never
 * followed. Entries are E2B's VolumeEntryStat: {name, path, type (file,
 * directory, symlink, unknown), size, mode, uid, gid, atime, mtime, ctime,
 * target?}.
 */
#ifndef E2B_VOLUME_STORE_H
#define E2B_VOLUME_STORE_H

#include "json.h"

#include <sys/types.h>

#define E2B_VOLUME_QUOTA_MB 1024

/* An open volume: mounted, its root held, a shared lock kept until closed.
 * (A claimed one: its image for a VM, the lock exclusive.) */
struct e2b_volume {
    json_t *meta;    /* volume.json */
    char *dir;       /* <data dir>/volumes/<id> */
    char *root;      /* <dir>/fs: the volume's files (NULL when claimed) */
    char *image;     /* <dir>/volume.img when claimed, else NULL */
    int root_fd;     /* O_PATH of root */
    int lock_fd;
    uint64_t quota;  /* bytes */
    bool api_quota;  /* "dir" storage: the quota is the content API's to keep */
};

/* {volumeID, name, token, quotaMB, createdAt, storage}. quota_mb 0: the default. */
int e2b_volume_create(const char *name, long long quota_mb, json_t **ret, struct e2b_error **err);
/* Every volume's volume.json, oldest first. */
int e2b_volume_list(json_t **ret, struct e2b_error **err);
int e2b_volume_get(const char *id_or_name, json_t **ret, struct e2b_error **err);
/* Delete unless in_use (called under the volume's exclusive lock) says a
 * sandbox holds it: E2B_ERR_EXISTS then, with in_use's message. */
int e2b_volume_delete(const char *id_or_name,
                      int (*in_use)(const char *volume_id, void *ud, struct e2b_error **err), void *ud,
                      struct e2b_error **err);
/* For this machine's use (the content API, bind mounts): E2B_ERR_EXISTS
 * while a VM has it (e2b_volume_claim). */
int e2b_volume_open(const char *id_or_name, struct e2b_volume *v, struct e2b_error **err);
void e2b_volume_close(struct e2b_volume *v);
/* A kernel of its own (a VM sandbox, holder its ID) takes the volume's
 * ext4 image whole, as a block device: the only way two kernels never
 * write one file system at once. Refused with E2B_ERR_EXISTS while another
 * sandbox has it (in_use: those binding its directory; or the VM of
 * another holder, as long as that sandbox exists, paused to disk too) or
 * this machine's kernel still mounts it; E2B_ERR_UNSUPPORTED for "dir"
 * storage, which has no image. This machine's mount of it is undone, and
 * every e2b_volume_open is refused while the claim lasts: as long as the
 * holder exists. Claiming again for the same holder (its resume) is no
 * error. v->image: the image's path; the volume lock is held exclusive
 * until e2b_volume_close (close it once the holder's state exists). */
int e2b_volume_claim(const char *id_or_name, const char *holder,
                     int (*in_use)(const char *volume_id, void *ud, struct e2b_error **err),
                     void *ud, struct e2b_volume *v, struct e2b_error **err);
/* Drop the claim of holder (a create that failed), before closing v. */
void e2b_volume_unclaim(struct e2b_volume *v, const char *holder);
/* Is token this volume's (constant time)? */
bool e2b_volume_token_ok(const struct e2b_volume *v, const char *token);

/* ---- files in an open volume ---- */

struct e2b_volume_attrs {
    long long uid, gid; /* -1: unchanged (new entries: 0) */
    long long mode;     /* -1: unchanged (new entries: 0644 files, 0755 directories) */
};
#define E2B_VOLUME_ATTRS_NONE ((struct e2b_volume_attrs){-1, -1, -1})

int e2b_volume_stat(const struct e2b_volume *v, const char *path, json_t **ret, struct e2b_error **err);
/* The entries below path, depth levels down (1: its own). */
int e2b_volume_list_dir(const struct e2b_volume *v, const char *path, int depth, json_t **ret,
                        struct e2b_error **err);
/* parents: make missing parents, and an existing directory is no error. */
int e2b_volume_mkdir(const struct e2b_volume *v, const char *path, const struct e2b_volume_attrs *a,
                     bool parents, json_t **ret, struct e2b_error **err);
int e2b_volume_set_attrs(const struct e2b_volume *v, const char *path, const struct e2b_volume_attrs *a,
                         json_t **ret, struct e2b_error **err);
/* A file or a whole tree. */
int e2b_volume_remove(const struct e2b_volume *v, const char *path, struct e2b_error **err);
/* A regular file for reading; *ret_size its size. */
int e2b_volume_open_read(const struct e2b_volume *v, const char *path, int *ret_fd, uint64_t *ret_size,
                         struct e2b_error **err);

/* Writing a file: into a temporary beside it, renamed over it at commit
 * (a reader sees the old content or the new, never half), parents made. */
struct e2b_volume_writer {
    int dir_fd, fd;
    char *name, *tmp, *path;
    uint64_t room;    /* bytes it may still write (api_quota), or UINT64_MAX */
    struct e2b_volume_attrs attrs;
};
int e2b_volume_write_begin(const struct e2b_volume *v, const char *path, const struct e2b_volume_attrs *a,
                           struct e2b_volume_writer *w, struct e2b_error **err);
int e2b_volume_write(struct e2b_volume_writer *w, const void *data, size_t len, struct e2b_error **err);
int e2b_volume_write_commit(struct e2b_volume_writer *w, const struct e2b_volume *v, json_t **ret,
                            struct e2b_error **err);
void e2b_volume_write_abort(struct e2b_volume_writer *w);

#endif
