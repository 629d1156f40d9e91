/* error.c - see error.h */
#include "error.h"

#include <stdarg.h>

static int set_v(struct e2b_error **err, int code, int errnum, const char *fmt, va_list ap) _printf_(4, 0);
static int set_v(struct e2b_error **err, int code, int errnum, const char *fmt, va_list ap)
{
    if (!err || *err)
        return -1;
    struct e2b_error *e = xcalloc(1, sizeof(*e));
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    if (errnum) {
        e->msg = xasprintf("%s: %s", msg, strerror(errnum));
        free(msg);
    } else {
        e->msg = msg;
    }
    e->code = code;
    e->sys_errno = errnum;
    *err = e;
    return -1;
}

int e2b_error_set(struct e2b_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_v(err, code, 0, fmt, ap);
    va_end(ap);
    return -1;
}

/* Errno value to an e2b error code (ENOENT -> NOT_FOUND, ...). */
static int code_of_errno(int errnum)
{
    switch (errnum) {
    case ENOENT:
    case ENOTDIR:
    case ESRCH:
        return E2B_ERR_NOT_FOUND;
    case EEXIST:
    case ENOTEMPTY:
        return E2B_ERR_EXISTS;
    case EACCES:
    case EPERM:
    case EROFS:
        return E2B_ERR_PERMISSION;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return E2B_ERR_NOSPACE;
    case EINVAL:
    case EISDIR:
    case ENAMETOOLONG:
    case ELOOP:
        return E2B_ERR_INVALID;
    case ETIMEDOUT:
        return E2B_ERR_TIMEOUT;
    case ECONNREFUSED:
    case ENETUNREACH:
    case EHOSTUNREACH:
        return E2B_ERR_NETWORK;
    case ENOSYS:
    case EOPNOTSUPP:
        return E2B_ERR_UNSUPPORTED;
    default:
        return E2B_ERR_GENERIC;
    }
}

int e2b_error_sys(struct e2b_error **err, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_v(err, code_of_errno(errnum), errnum, fmt, ap);
    va_end(ap);
    return -1;
}

int e2b_error_wrap(struct e2b_error **err, const char *fmt, ...)
{
    if (!err || !*err)
        return -1;
    char *ctx = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&ctx, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *msg = xasprintf("%s: %s", ctx, (*err)->msg);
    free(ctx);
    free((*err)->msg);
    (*err)->msg = msg;
    return -1;
}

void e2b_error_free(struct e2b_error *err)
{
    if (!err)
        return;
    free(err->msg);
    free(err);
}

int e2b_error_exit_code(const struct e2b_error *err)
{
    if (!err)
        return 0;
    return err->code == E2B_ERR_USAGE ? 2 : 1;
}
