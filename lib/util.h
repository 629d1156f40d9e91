/* util.h - cleanup attributes, ownership helpers and small allocation wrappers.
 *
 * Every lib/ and cmd/ file includes this. The cleanup attributes need GNU C
 * (gcc or clang with -std=gnu11); variables using them must be initialised
 * to NULL / -1 at declaration.
 */
#ifndef E2B_UTIL_H
#define E2B_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <errno.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _noreturn_ __attribute__((noreturn))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define STREQ(a, b) (strcmp((a), (b)) == 0)

/* Hand ownership out of a cleanup variable: return TAKE_PTR(p); */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _took_ = (p);                                                                \
        (p) = NULL;                                                                                \
        _took_;                                                                                    \
    })
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _took_fd_ = (fd);                                                                      \
        (fd) = -1;                                                                                 \
        _took_fd_;                                                                                 \
    })

static inline void e2b_freep(void *p) { free(*(void **)p); }
static inline void e2b_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno; /* a cleanup must not clobber the error being reported */
        close(*fd);
        errno = saved;
    }
}
static inline void e2b_closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}
static inline void e2b_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
/* A NULL-terminated array of strings, each owned. */
static inline void e2b_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}
static inline void e2b_strv_freep(char ***v) { e2b_strv_free(*v); }
/* What a release function owns, freed at once: the strings at each address,
 * e2b_free_many(&img->ref, &img->repo), or the vectors (e2b_strv_free_many). */
void e2b_free_many_(char **const *p, size_t n);
void e2b_strv_free_many_(char **const *const *p, size_t n);
#define e2b_free_many(...) \
    e2b_free_many_((char **const[]){ __VA_ARGS__ }, ARRAY_SIZE(((char **const[]){ __VA_ARGS__ })))
#define e2b_strv_free_many(...)                                 \
    e2b_strv_free_many_((char **const *const[]){ __VA_ARGS__ }, \
                        ARRAY_SIZE(((char **const *const[]){ __VA_ARGS__ })))

#define _cleanup_free_ _cleanup_(e2b_freep)
#define _cleanup_close_ _cleanup_(e2b_closep)
#define _cleanup_closedir_ _cleanup_(e2b_closedirp)
#define _cleanup_fclose_ _cleanup_(e2b_fclosep)
#define _cleanup_strv_ _cleanup_(e2b_strv_freep)

/* Allocation failure is not a recoverable error for this program. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);
char *xvasprintf(const char *fmt, va_list ap) _printf_(1, 0);

size_t e2b_strv_len(char *const *v);
/* Append a copy of s to a NULL-terminated vector; returns the new vector. */
char **e2b_strv_push(char **v, const char *s);

bool e2b_str_has_prefix(const char *s, const char *prefix);
bool e2b_str_has_suffix(const char *s, const char *suffix);

/* Monotonic and wall clock in milliseconds. */
int64_t e2b_now_ms(void);
int64_t e2b_wall_ms(void);
/* CLOCK_BOOTTIME: one clock for every process on the machine that neither
 * jumps with the wall clock nor stops in suspend; used for deadlines kept in
 * state files. */
int64_t e2b_boot_ms(void);

#endif
