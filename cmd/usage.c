/* usage.c - see usage.h */
#include "usage.h"

#include <stdarg.h>

int e2b_fail(struct e2b_error *err)
{
    if (!err)
        return 1;
    fprintf(stderr, "e2b: %s\n", err->msg);
    return e2b_error_exit_code(err);
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
