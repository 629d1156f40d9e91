/* error.h - the error model: functions return <0 and fill a struct e2b_error.
 *
 * lib/ never prints or exits. It sets exactly one error on failure; callers
 * may wrap it with context ("cannot pull 'x': <cause>") and cmd/ prints it
 * once. The code maps to the process exit status.
 */
#ifndef E2B_ERROR_H
#define E2B_ERROR_H

#include "util.h"

enum e2b_errcode {
    E2B_ERR_GENERIC = 1, /* anything else: exit 1 */
    E2B_ERR_USAGE,       /* bad command line: exit 2 */
    E2B_ERR_NOT_FOUND,   /* no such sandbox, template, file */
    E2B_ERR_EXISTS,
    E2B_ERR_INVALID,     /* bad input data (JSON, Dockerfile, ...) */
    E2B_ERR_PERMISSION,
    E2B_ERR_AUTH,        /* missing or refused credentials */
    E2B_ERR_NETWORK,     /* could not reach a server */
    E2B_ERR_API,         /* server answered with an error status */
    E2B_ERR_TIMEOUT,
    E2B_ERR_NOSPACE,
    E2B_ERR_UNSUPPORTED,
    E2B_ERR_CANCELLED,
};

struct e2b_error {
    int code;          /* enum e2b_errcode */
    int sys_errno;     /* errno at the failure, 0 if none */
    long http_status;  /* status of a failed HTTP call, 0 if none */
    char *msg;         /* full message, context first */
};

/* Set *err (if err is non-NULL and *err is NULL) and return -1. */
int e2b_error_set(struct e2b_error **err, int code, const char *fmt, ...) _printf_(3, 4);
/* Like e2b_error_set, and appends ": strerror(errnum)". */
int e2b_error_sys(struct e2b_error **err, int errnum, const char *fmt, ...) _printf_(3, 4);
/* Prefix the existing error's message with context ("ctx: old"); returns -1. */
int e2b_error_wrap(struct e2b_error **err, const char *fmt, ...) _printf_(2, 3);
void e2b_error_free(struct e2b_error *err);
static inline void e2b_error_freep(struct e2b_error **err)
{
    e2b_error_free(*err);
    *err = NULL;
}
#define _cleanup_error_ _cleanup_(e2b_error_freep)
/* Process exit status for an error: 2 for usage, 1 otherwise. */
int e2b_error_exit_code(const struct e2b_error *err);

#endif
