/* envd-watch.h - directory watching with inotify: the WatchDir stream and the
 * polled CreateWatcher / GetWatcherEvents / RemoveWatcher. */
#ifndef E2B_ENVD_WATCH_H
#define E2B_ENVD_WATCH_H

#include "envd-state.h"

/* A polled watcher (CreateWatcher) nobody asks for events this long is
 * removed: its client is gone and it would hold inotify watches forever. */
#define E2B_WATCH_IDLE_TIMEOUT_DEFAULT 3600

int e2b_watch_init(struct event_base *base, struct e2b_error **err);
void e2b_watch_set_idle_timeout(int seconds);
/* Watchers open now (streams and polled). */
size_t e2b_watch_count(void);
void e2b_fs_watch_dir(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_fs_create_watcher(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_fs_get_watcher_events(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);
void e2b_fs_remove_watcher(struct e2b_http_req *req, json_t *msg, const struct e2b_user *user);

#endif
