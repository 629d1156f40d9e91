/* usage.h - how a command reports failure: "e2b: <message>" on stderr, once,
 * and the exit code that goes with it (git's usage.c). Only cmd/ prints. */
#ifndef E2B_USAGE_H
#define E2B_USAGE_H

#include "error.h"

/* Print "e2b: <message>" for an error and return its exit code. */
int e2b_fail(struct e2b_error *err);
/* Print a usage error with a hint naming the help to read; returns 2. */
int e2b_usage_error(const char *hint_cmd, const char *fmt, ...) _printf_(2, 3);
/* Flush stdout: 0, or 1 when it cannot take the data (a full disk), said
 * once on stderr ("e2b: cannot write to stdout: ..."; nothing for a closed
 * pipe), here or when the command returns, not both. Commands that print as
 * they go (watch, logs -f) call it to stop instead of going on. */
int e2b_stdout_check(void);

#endif
