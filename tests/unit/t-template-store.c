/* t-template-store.c - a build's template.json as the store writes it. */
#include "tap.h"
#include "template-store.h"

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
    return tap_done();
}
