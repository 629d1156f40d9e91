/* t-snapshot-store.c - the snapshot store: names and IDs with tags, a name
 * given again replacing its snapshot under the same template ID, forks'
 * snapshots unlisted, a pinned snapshot's files kept after its delete, a
 * held one not deleted, a holder that goes releasing what it held, and a
 * maker that died leaving nothing for long. */
#include "tap.h"
#include "fsutil.h"
#include "snapshot-store.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A snapshot named name (or none) whose save holds one file; its dir. */
static char *make(const char *name, bool internal, const char *parent, json_t **ret_meta)
{
    struct e2b_snapshot_txn txn;
    struct e2b_error *err = NULL;
    char *dir = NULL;
    if (e2b_snapshot_begin(name, &txn, &err) < 0) {
        diag("begin: %s", err->msg);
        e2b_error_free(err);
        return NULL;
    }
    char *f = e2b_path_join(txn.save_dir, "vmstate");
    e2b_write_file_atomic(f, "x", 1, 0600, NULL);
    free(f);
    json_t *meta = json_pack("{s:s, s:b, s:I}", "sandboxID", "aaaaaaaaaaaaaaaaaaaa", "internal",
                             internal, "createdAtMs", (json_int_t)e2b_now_ms());
    if (parent) {
        json_object_set_new(meta, "parent", json_string(parent));
        e2b_snapshot_hold(parent, txn.key, NULL);
    }
    if (e2b_snapshot_commit(&txn, meta, ret_meta, &err) == 0)
        dir = xstrdup(txn.final_dir);
    else
        diag("commit: %s", err->msg);
    json_decref(meta);
    e2b_error_free(err);
    e2b_snapshot_abort(&txn);
    return dir;
}

static bool exists(const char *dir) { return access(dir, F_OK) == 0; }

int main(void)
{
    char tmpl[] = "/tmp/t-snapshot-store.XXXXXX";
    char *tmp = mkdtemp(tmpl);
    setenv("E2B_DATA_DIR", tmp, 1);
    struct e2b_error *err = NULL;
    json_t *m = NULL, *list = NULL;

    ok(e2b_snapshot_name_valid("my-snap") && e2b_snapshot_name_valid("my_snap:v1.2"),
       "names with and without a tag");
    ok(!e2b_snapshot_name_valid("My Snap") && !e2b_snapshot_name_valid("team/snap") &&
           !e2b_snapshot_name_valid("snap:") && !e2b_snapshot_name_valid(""),
       "no capitals, spaces, namespaces or empty tags");
    struct e2b_snapshot_txn txn;
    ok(e2b_snapshot_begin("Bad Name", &txn, &err) < 0 && err->code == E2B_ERR_INVALID &&
           strstr(err->msg, "Bad Name"),
       "a bad name is refused by name");
    e2b_error_free(err), err = NULL;

    /* unnamed: ID <templateID>:default, found with and without the tag */
    char *a = make(NULL, false, NULL, &m);
    ok(a != NULL, "an unnamed snapshot");
    const char *sid = e2b_json_str(m, "snapshotID");
    char tid[64];
    snprintf(tid, sizeof(tid), "%s", e2b_json_str(m, "templateID"));
    ok(sid && strlen(sid) == 28 && strstr(sid, ":default"), "its ID: %s", sid);
    json_decref(m), m = NULL;
    char *found = NULL;
    ok(e2b_snapshot_find(tid, NULL, &found, NULL) == 0 && STREQ(found, a), "found by template ID");
    free(found), found = NULL;
    char ref[80];
    snprintf(ref, sizeof(ref), "%s:default", tid);
    ok(e2b_snapshot_find(ref, NULL, NULL, NULL) == 0, "and with its tag");
    snprintf(ref, sizeof(ref), "%s:v2", tid);
    ok(e2b_snapshot_find(ref, NULL, NULL, &err) < 0 && err->code == E2B_ERR_NOT_FOUND,
       "not with another tag");
    e2b_error_free(err), err = NULL;

    /* named, then named again: the same template ID, the old one gone */
    char *n1 = make("snap", false, NULL, &m);
    char ntid[64];
    snprintf(ntid, sizeof(ntid), "%s", e2b_json_str(m, "templateID"));
    is_str(e2b_json_str(m, "snapshotID"), "snap:default", "a name's ID");
    is_str(json_string_value(json_array_get(json_object_get(m, "names"), 0)), "snap", "its names");
    json_decref(m), m = NULL;
    char *n2 = make("snap", false, NULL, &m);
    is_str(e2b_json_str(m, "templateID"), ntid, "named again: the same template");
    json_decref(m), m = NULL;
    ok(e2b_snapshot_find("snap", NULL, &found, NULL) == 0 && STREQ(found, n2),
       "the name finds the new one");
    free(found), found = NULL;
    ok(!exists(n1), "the old one is gone (nothing used it)");
    char *n3 = make("snap:v1", false, NULL, NULL);
    ok(e2b_snapshot_find("snap:v1", NULL, &found, NULL) == 0 && STREQ(found, n3) &&
           e2b_snapshot_find("snap", NULL, NULL, NULL) == 0,
       "another tag of the name is a snapshot of its own");
    free(found), found = NULL;

    /* a fork's: found by its ID, never listed */
    char *f = make(NULL, true, NULL, &m);
    ok(e2b_snapshot_find(e2b_json_str(m, "snapshotID"), NULL, NULL, NULL) == 0,
       "a fork's snapshot is found");
    json_decref(m), m = NULL;
    int lr = e2b_snapshot_list(&list, NULL);
    size_t listed = json_array_size(list);
    ok(lr == 0 && listed == 3, "three listed, not the fork's (%zu)", listed);
    is_str(e2b_json_str(json_array_get(list, 0), "snapshotID"), "snap:v1", "newest first");
    json_decref(list), list = NULL;

    /* pinned: deleted from the names at once, its files kept until unpinned */
    int pin = e2b_snapshot_pin(a, NULL);
    ok(pin >= 0, "pinned");
    ok(e2b_snapshot_delete(tid, NULL) == 0, "deleted");
    ok(e2b_snapshot_find(tid, NULL, NULL, &err) < 0 && err->code == E2B_ERR_NOT_FOUND,
       "no longer found");
    e2b_error_free(err), err = NULL;
    ok(e2b_snapshot_delete(tid, &err) < 0 && err->code == E2B_ERR_NOT_FOUND,
       "a second delete: not found");
    e2b_error_free(err), err = NULL;
    ok(exists(a), "its files stay while a sandbox runs from it");
    close(pin);
    e2b_snapshot_collect();
    ok(!exists(a), "collected once unpinned");
    ok(e2b_snapshot_pin(a, &err) < 0 && err->code == E2B_ERR_NOT_FOUND,
       "a pin of what is gone fails");
    e2b_error_free(err), err = NULL;

    /* held by a paused sandbox, and by a snapshot made from its sandboxes */
    ok(e2b_snapshot_hold(n2, "pausedsandboxxxxxxxx", NULL) == 0, "held by a paused sandbox");
    int dr = e2b_snapshot_delete("snap", &err);
    ok(dr < 0 && err->code == E2B_ERR_INVALID &&
           strstr(err->msg, "paused sandbox pausedsandboxxxxxxxx"),
       "a held snapshot is not deleted; who holds it is said: %s", err ? err->msg : "");
    e2b_error_free(err), err = NULL;
    e2b_snapshot_release(n2, "pausedsandboxxxxxxxx");
    char *child = make("child", false, n2, &m);
    json_decref(m), m = NULL;
    ok(e2b_snapshot_delete("snap", &err) < 0 && strstr(err->msg, "snapshot "),
       "held by a child snapshot");
    e2b_error_free(err), err = NULL;
    ok(e2b_snapshot_delete("child", NULL) == 0 && !exists(child), "the child goes");
    ok(e2b_snapshot_delete("snap", NULL) == 0 && !exists(n2),
       "and releases its parent, which goes too");

    /* a maker that died leaves its staging directory; the collector removes it */
    pid_t p = fork();
    if (p == 0) {
        struct e2b_snapshot_txn t;
        _exit(e2b_snapshot_begin(NULL, &t, NULL) == 0 ? 0 : 1);
    }
    int status;
    waitpid(p, &status, 0);
    char *root = e2b_snapshots_dir();
    char *stale = xasprintf("ls -a %s | grep -q '^.new-'", root);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && system(stale) == 0,
       "a dead maker's staging is there");
    e2b_snapshot_collect();
    ok(system(stale) != 0, "and gone after a collection");

    e2b_snapshot_delete("snap:v1", NULL);
    e2b_snapshot_delete_dir(f);
    ok(!exists(f) && !exists(n3), "all deleted and collected");
    e2b_rm_rf(tmp, NULL);
    e2b_free_many(&a, &n1, &n2, &n3, &f, &child, &root, &stale);
    return tap_done();
}
