/* dl.h - shared libraries opened the first time they are used, not at start.
 *
 * libarchive and libgit2 bring some 20 shared objects with them, most built
 * with BIND_NOW: binding them cost ~3.5 ms at every start of e2b, a third of
 * an exec round trip, though only template builds use them. Debian's libcurl
 * brings 30 (TLS twice over, Kerberos, LDAP, SSH): 3.5 ms to load and 1 ms
 * for curl_global_init, though local create, list, kill, info and the like
 * never talk HTTP (e2b --version: 5.7 -> 1.3 ms). So e2b links none of
 * them; each is opened with dlopen when a module first calls into it, and
 * calls keep their usual names. What talks HTTP pays the same as before.
 *
 * A module includes "dl-archive.h", "dl-git.h" or "dl-curl.h" instead of the library's
 * own header. Those headers describe the functions e2b uses in one
 * table (an X-macro), declare a struct of pointers to them, and redirect each
 * name to its pointer. Entry points call e2b_dl_load() first so that a
 * missing library is an ordinary error; a call that reaches a library nobody
 * loaded opens it then, and ends the program (as the dynamic loader would at
 * start) only if it cannot.
 */
#pragma once

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

struct e2b_dl_lib {
    const char *soname;        /* e.g. "libgit2.so.1.5" */
    const char *const *names;  /* the functions, in slot order */
    void **slots;              /* filled by the loader */
    size_t count;
    int (*after_load)(void);   /* optional one-time library init (under a lock); <0 fails */
    int ready;                 /* set (release) once slots and after_load are done */
};


/* Opens lib once (thread-safe) and fills its slots. */
int e2b_dl_load(struct e2b_dl_lib *lib, struct e2b_error **err);

/* e2b_dl_load or the end of the program with the loader's message. */
void e2b_dl_load_or_die(struct e2b_dl_lib *lib);

/* The fast path of every redirected call: one acquire load. */
static inline void e2b_dl_need(struct e2b_dl_lib *lib)
{
    if (!__atomic_load_n(&lib->ready, __ATOMIC_ACQUIRE))
        e2b_dl_load_or_die(lib);
}

/* Declares, for a library NAME whose functions LIST names (an X-macro):
 * struct e2b_NAME_api with one pointer per function, its instance, its
 * loader record e2b_NAME_lib and e2b_NAME_load(err). */
#define E2B_DL_SLOT(f) __typeof__(f) *f;
#define E2B_DL_DECLARE(NAME, LIST)                                   \
    struct e2b_##NAME##_api {                                        \
        LIST(E2B_DL_SLOT)                                            \
    };                                                               \
    extern struct e2b_##NAME##_api e2b_##NAME##_api;                 \
    extern struct e2b_dl_lib e2b_##NAME##_lib;                       \
    static inline int e2b_##NAME##_load(struct e2b_error **err)      \
    {                                                                \
        return e2b_dl_load(&e2b_##NAME##_lib, err);                  \
    }

/* Defines what E2B_DL_DECLARE declared, in the library's dl-NAME.c. */
#define E2B_DL_NAME(f) #f,
#define E2B_DL_DEFINE(NAME, LIST, SONAME, AFTER_LOAD)                                  \
    struct e2b_##NAME##_api e2b_##NAME##_api;                                          \
    static const char *const NAME##_names[] = {LIST(E2B_DL_NAME)};                     \
    struct e2b_dl_lib e2b_##NAME##_lib = {                                             \
        .soname = SONAME,                                                              \
        .names = NAME##_names,                                                         \
        .slots = (void **)&e2b_##NAME##_api,                                           \
        .count = sizeof(NAME##_names) / sizeof(NAME##_names[0]),                       \
        .after_load = AFTER_LOAD,                                                      \
    };                                                                                 \
    _Static_assert(sizeof(e2b_##NAME##_api) == sizeof(NAME##_names) / sizeof(char *) * \
                       sizeof(void *),                                                 \
                   "one pointer per name")
