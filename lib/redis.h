/* redis.h - a small Redis client: a pool of TCP connections to one server.
 *
 * What the cluster catalog (cluster.h) needs and no more: a URL
 * (redis://[[user]:password@]host[:port][/db]), AUTH and SELECT on each new
 * connection, one command at a time per connection, bounded waits (connect
 * 3 s, a reply 5 s), and a reply read with resp.h. Threads share the
 * client: each call takes an idle connection from the pool (or opens one)
 * and gives it back afterwards, unless it failed, in which case it is
 * closed, so a broken connection is never reused. A call on a pooled
 * connection that the server closed meanwhile (a restart of Redis) is tried
 * once more on a new one.
 */
#ifndef E2B_REDIS_H
#define E2B_REDIS_H

#include "error.h"
#include "resp.h"

struct e2b_redis;

/* Parse the URL and check the server answers (PING). */
int e2b_redis_open(const char *url, struct e2b_redis **ret, struct e2b_error **err);
void e2b_redis_close(struct e2b_redis *r);

/* One command; *ret the reply (caller frees). An error reply (-ERR ...) is
 * an E2B_ERR_API error naming the command; ret may be NULL. */
int e2b_redis_cmdv(struct e2b_redis *r, size_t argc, const char *const *argv, const size_t *lens,
                   struct e2b_resp **ret, struct e2b_error **err);
/* The same with C-string arguments ending in NULL. */
int e2b_redis_cmd(struct e2b_redis *r, struct e2b_resp **ret, struct e2b_error **err, ...)
    __attribute__((sentinel));

/* "host:port" of the server, for messages. */
const char *e2b_redis_where(const struct e2b_redis *r);

#endif
