/* t-redis.c - the Redis client's URLs, and what it says when no server answers. */
#include "redis.h"
#include "tap.h"

static bool refused(const char *url, const char *want)
{
    struct e2b_redis *r = NULL;
    struct e2b_error *err = NULL;
    bool ok = e2b_redis_open(url, &r, &err) < 0 && !r && err && strstr(err->msg, want);
    if (!ok)
        diag("%s: %s", url, err ? err->msg : "accepted");
    e2b_error_free(err);
    return ok;
}

int main(void)
{
    ok(refused("http://127.0.0.1:6379", "does not start with redis://"),
       "a URL that is not redis://");
    ok(refused("redis://:pw@", "names no host"), "no host");
    ok(refused("redis://127.0.0.1:http", "not a TCP port"), "a port that is not a number");
    ok(refused("redis://127.0.0.1:70000", "not a TCP port"), "a port out of range");
    ok(refused("redis://127.0.0.1:6379/x", "not a number"), "a database that is not a number");
    ok(refused("redis://[::1:6379", "unclosed ["), "an unclosed IPv6 host");
    /* port 1 on loopback: nothing listens there */
    ok(refused("redis://user:secret-pw@127.0.0.1:1/2", "cannot reach the catalog at 127.0.0.1:1"),
       "no server");
    struct e2b_redis *r = NULL;
    struct e2b_error *err = NULL;
    e2b_redis_open("redis://user:secret-pw@127.0.0.1:1", &r, &err);
    ok(err && !strstr(err->msg, "secret-pw"), "the password is never in a message");
    e2b_error_free(err);
    return tap_done();
}
