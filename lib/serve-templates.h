/* serve-templates.h - E2B's template build API on `e2b serve`: templates,
 * builds, their files, logs and tags (e2b-protocol.md 2.3 and 7).
 *
 *   POST   /v3/templates                         202 {templateID, buildID, ...}
 *   POST   /v2/templates/{id}/builds/{build}     202: the steps start building
 *   GET    /templates/{id}/files/{hash}          201 {present, url?}
 *   PUT    <url>                                 200: the files (tar or tar.gz)
 *   GET    /templates/{id}/builds/{build}/status 200 {status, logEntries, reason?}
 *   GET    /templates/{id}/builds/{build}/logs   200 {logs}
 *   GET    /templates/{id}/tags                  200 [{tag, buildID, createdAt}]
 *   POST   /templates/tags                       201 {tags, buildID}
 *   DELETE /templates/tags                       204
 *   PATCH  /v2/templates/{id} (and /templates/{id}) {public}
 *   POST   /templates, /templates/{id}, /templates/{id}/builds/{build}: the
 *          v1 flow (a Dockerfile without a context)
 *
 * A build is registered by the request (status `waiting`), queued when its
 * steps arrive and run by one of max_builds threads: lib/template-steps.c
 * makes the steps a Dockerfile whose context is the uploaded files, and
 * `e2b __template-worker` (cmd/template-worker.c) runs lib/build.c on it
 * in a process of its own, its JSON lines becoming the build's log. The
 * store switches to the new build only when it is done, so a failed,
 * cancelled or superseded build leaves the previous one serving. As on
 * E2B, starting a build cancels the other builds of its template that are
 * queued or running ("superseded by a newer one"), a new request
 * supersedes the template's builds that were never started, and starting
 * one build twice is 400.
 *
 * Uploads carry no API key: each URL holds a token handed out by the files
 * call, good for one upload within an hour. The body is size-limited
 * (upload_limit_mb), unpacked through lib/layer.c (nothing outside the
 * upload's directory, no `..`), and checked against its filesHash when a
 * build names it: a mismatch is 400 and the upload is thrown away.
 */
#ifndef E2B_SERVE_TEMPLATES_H
#define E2B_SERVE_TEMPLATES_H

#include "http1.h"
#include "serve-conn.h"

/* Start the build threads (before connections are served). */
int e2b_serve_builds_start(const struct e2b_serve_opts *o, struct e2b_serve_builds **ret,
                           struct e2b_error **err);
/* Cancel what runs, wait for the threads. */
void e2b_serve_builds_stop(struct e2b_serve_builds *b);

/* An authenticated API request: true when it is one of the routes above
 * (out then holds the answer), false to leave it to serve-api.c. */
bool e2b_serve_templates(const struct e2b_serve_opts *o, const struct e2b_http1_head *r,
                         const struct strbuf *body, struct e2b_serve_reply *out);

/* An upload (PUT to a URL handed out): it has no API key and a body of its
 * own size, so the connection loop hands it over before reading the body.
 * Answers it; false when the connection must close. */
bool e2b_serve_templates_is_upload(const struct e2b_http1_head *r);
bool e2b_serve_templates_upload(struct e2b_serve_conn *c, const struct e2b_http1_head *r,
                                bool close_after);

#endif
