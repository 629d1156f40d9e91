/* template-client.h - a template build through E2B's template API (E2B's
 * cloud or `e2b serve`), as E2B's SDK makes one (e2b-protocol.md 7):
 *
 *   POST /v3/templates {name, tags, cpuCount, memoryMB}  -> templateID, buildID
 *   per COPY step: GET /templates/{id}/files/{filesHash}; when not present,
 *                  PUT a tar.gz of its files (the SDK's file list and hash,
 *                  template-steps.h) to the URL it gives
 *   POST /v2/templates/{id}/builds/{buildID} {fromImage, steps, ...}
 *   GET  .../status?logsOffset=N until ready or error, the log entries as they come
 *
 * The caller hands in the build (template-steps.h's e2b_steps_from_dockerfile
 * for a Dockerfile); COPY steps get their filesHash here.
 */
#ifndef E2B_TEMPLATE_CLIENT_H
#define E2B_TEMPLATE_CLIENT_H

#include "json.h"

struct e2b_remote_build_opts {
    const char *api_url, *api_key;
    const char *name;          /* name[:tag] */
    const char *const *tags;   /* more tags, NULL-ended, or NULL */
    long cpu_count, memory_mb; /* 0: the API's default */
    const char *context;       /* where COPY sources are */
    json_t *start;             /* TemplateBuildStartV2 (the steps are given their filesHash) */
    /* each log entry of the build, as the API gives it; may be NULL */
    void (*log)(void *ud, const json_t *entry);
    /* what is going on: "requesting", "uploading <src>", "waiting", "building" ... ; may be NULL */
    void (*phase)(void *ud, const char *what);
    void *ud;
};

/* Build; ret: {templateID, buildID, tags} (new reference). A build that
 * ends in error: E2B_ERR_GENERIC with the API's reason (and its step). */
int e2b_remote_build(const struct e2b_remote_build_opts *o, json_t **ret, struct e2b_error **err);

/* Tags through the API: list [{tag, buildID, createdAt}], assign to the
 * build `target` ("name[:tag]") names, remove from `name`. */
int e2b_remote_tags_list(const char *api_url, const char *api_key, const char *name, json_t **ret,
                         struct e2b_error **err);
int e2b_remote_tags_assign(const char *api_url, const char *api_key, const char *target,
                           const char *const *tags, json_t **ret, struct e2b_error **err);
int e2b_remote_tags_remove(const char *api_url, const char *api_key, const char *name,
                           const char *const *tags, struct e2b_error **err);

#endif
