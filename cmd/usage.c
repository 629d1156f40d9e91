/* usage.c - see usage.h */
#include "usage.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

int e2b_fail(struct e2b_error *err)
{
    if (!err)
        return 1;
    fprintf(stderr, "e2b: %s\n", err->msg);
    return e2b_error_exit_code(err);
}

int e2b_stdout_check(void)
{
    static bool reported;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    if (!reported && errno != EPIPE)
        fprintf(stderr, "e2b: cannot write to stdout: %s\n", strerror(errno));
    reported = true;
    return 1;
}

int e2b_usage_error(const char *hint_cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("e2b: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nhint: see 'e2b %s%s--help'\n", hint_cmd ? hint_cmd : "",
            hint_cmd && *hint_cmd ? " " : "");
    return 2;
}
