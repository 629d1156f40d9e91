/* t-template-store.c - a build's template.json as the store writes it;
 * builds under given IDs, tags naming builds, publishing. */
#include "tap.h"
#include "fsutil.h"
#include "template-store.h"

#include <stdlib.h>
#include <unistd.h>

/* A build of `name` under the given IDs, committed with its tags. */
static int build(struct e2b_store *s, const char *name, const char *tid, const char *bid, const char **tags)
{
    struct e2b_store_txn txn;
    struct e2b_error *err = NULL;
    if (e2b_store_begin(s, name, tid, bid, &txn, &err) < 0) {
        diag("begin: %s", err->msg);
        e2b_error_free(err);
        return -1;
    }
    struct e2b_template_info ti = {.template_id = txn.template_id, .build_id = txn.build_id, .name = name,
                                   .tags = tags};
    json_t *m = e2b_template_meta_new(&ti);
    int r = e2b_store_commit(&txn, m, &err);
    if (r < 0)
        diag("commit: %s", err->msg);
    json_decref(m);
    e2b_error_free(err);
    e2b_store_abort(&txn);
    return r;
}

static const char *found_build(struct e2b_store *s, const char *name, json_t **keep)
{
    json_decref(*keep);
    *keep = NULL;
    if (e2b_store_find(s, name, keep, NULL, NULL) < 0)
        return NULL;
    return e2b_json_str(*keep, "buildID");
}

static void store_tests(void)
{
    char tmpl[] = "/tmp/t-template-store.XXXXXX";
    char *dir = mkdtemp(tmpl);
    setenv("E2B_DATA_DIR", dir, 1);
    struct e2b_store s;
    struct e2b_error *err = NULL;
    ok(e2b_store_open(&s, &err) == 0, "store opens");
    const char *v1[] = {"v1", NULL}, *v2[] = {"v2", NULL};
    ok(build(&s, "app", "apptemplate000000001", "11111111-aaaa-4bbb-8ccc-000000000001", v1) == 0, "build 1, v1");
    ok(build(&s, "app", NULL, "11111111-aaaa-4bbb-8ccc-000000000002", v2) == 0, "build 2, v2");
    json_t *m = NULL;
    is_str(found_build(&s, "app", &m), "11111111-aaaa-4bbb-8ccc-000000000002", "the name: the newest build");
    is_str(e2b_json_str(m, "templateID"), "apptemplate000000001", "the given template ID kept");
    is_str(found_build(&s, "app:v1", &m), "11111111-aaaa-4bbb-8ccc-000000000001", "a tag: its build, kept");
    is_str(found_build(&s, "apptemplate000000001:v2", &m), "11111111-aaaa-4bbb-8ccc-000000000002", "ID:tag");
    ok(!found_build(&s, "app:v3", &m), "an unknown tag finds nothing");
    char *bid = NULL;
    const char *prod[] = {"prod", NULL};
    ok(e2b_store_tag_assign(&s, "app:v1", prod, &bid, &err) == 0, "assign prod to v1's build");
    is_str(bid, "11111111-aaaa-4bbb-8ccc-000000000001", "the build v1 names");
    free(bid);
    is_str(found_build(&s, "app:prod", &m), "11111111-aaaa-4bbb-8ccc-000000000001", "prod finds it");
    json_t *list = NULL;
    ok(e2b_store_tag_list(&s, "app", &list, &err) == 0 && json_array_size(list) == 3, "three tags listed");
    json_decref(list);
    const char *gone[] = {"v1", "prod", NULL};
    ok(e2b_store_tag_remove(&s, "app", gone, &err) == 0, "v1 and prod removed");
    ok(!found_build(&s, "app:v1", &m), "v1 gone");
    char path[512];
    snprintf(path, sizeof(path), "%s/templates/apptemplate000000001/builds/11111111-aaaa-4bbb-8ccc-000000000001",
             dir);
    ok(access(path, F_OK) < 0, "the build no tag names and that is not current is collected");
    const char *nosuch[] = {"nosuch", NULL};
    ok(e2b_store_tag_remove(&s, "app", nosuch, &err) < 0 && err->code == E2B_ERR_NOT_FOUND, "removing an unknown tag");
    e2b_error_free(err);
    err = NULL;
    const char *bad[] = {"no spaces", NULL};
    ok(e2b_store_tag_assign(&s, "app", bad, NULL, &err) < 0 && err->code == E2B_ERR_INVALID, "a bad tag");
    e2b_error_free(err);
    err = NULL;
    json_t *pm = NULL;
    ok(e2b_store_set_public(&s, "app", true, &pm, &err) == 0 && json_is_true(json_object_get(pm, "public")),
       "published");
    json_decref(pm);
    ok(build(&s, "app", NULL, NULL, NULL) == 0, "a build without tags");
    ok(json_is_true(json_object_get((found_build(&s, "app", &m), m), "public")), "publishing outlives a build");
    is_str(found_build(&s, "app:default", &m), e2b_json_str(m, "buildID"), "it got the default tag");
    struct e2b_store_txn txn;
    ok(e2b_store_begin(&s, "x", "Bad/ID", NULL, &txn, &err) < 0 && err->code == E2B_ERR_INVALID,
       "IDs are checked");
    e2b_error_free(err);
    json_decref(m);
    e2b_store_close(&s);
    e2b_rm_rf(dir, NULL);
}

int main(void)
{
    const char *tags[] = {"v1", "latest", NULL};
    struct e2b_template_info ti = {.template_id = "abcdefghij0123456789", .build_id = "b1", .name = "py",
                                   .tags = tags, .cpu_count = 4, .memory_mb = 2048, .disk_mb = 300,
                                   .start_cmd = "serve"};
    json_t *m = e2b_template_meta_new(&ti);
    ok(m != NULL, "made");
    is_str(e2b_json_str(m, "templateID"), "abcdefghij0123456789", "templateID");
    is_str(e2b_json_str(m, "buildID"), "b1", "buildID");
    is_int(e2b_json_int(m, "cpuCount", 0), 4, "cpuCount");
    is_int(e2b_json_int(m, "memoryMB", 0), 2048, "memoryMB");
    is_int(e2b_json_int(m, "diskSizeMB", 0), 300, "diskSizeMB");
    ok(json_is_false(json_object_get(m, "public")), "not public");
    is_str(json_string_value(json_array_get(json_object_get(m, "aliases"), 0)), "py", "alias");
    is_str(json_string_value(json_array_get(json_object_get(m, "names"), 0)), "py", "name");
    is_str(e2b_json_str(m, "createdAt"), e2b_json_str(m, "updatedAt"), "created when updated");
    is_str(e2b_json_str(m, "buildStatus"), "ready", "ready");
    is_int(json_array_size(json_object_get(m, "tags")), 2, "its tags");
    is_str(json_string_value(json_array_get(json_object_get(m, "tags"), 1)), "latest", "in order");
    is_str(e2b_json_str(m, "startCmd"), "serve", "start command");
    ok(json_is_null(json_object_get(m, "readyCmd")), "no ready command is null");
    json_decref(m);

    /* the defaults: 2 CPUs, 512 MiB, the tag "default" */
    struct e2b_template_info bare = {.template_id = "t", .build_id = "b", .name = "n"};
    m = e2b_template_meta_new(&bare);
    is_int(e2b_json_int(m, "cpuCount", 0), 2, "default CPUs");
    is_int(e2b_json_int(m, "memoryMB", 0), 512, "default memory");
    is_str(json_string_value(json_array_get(json_object_get(m, "tags"), 0)), "default", "default tag");
    ok(json_is_null(json_object_get(m, "startCmd")), "no start command is null");
    json_decref(m);
    store_tests();
    return tap_done();
}
