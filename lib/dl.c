/* dl.c - see dl.h */
#include "dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One lock for all libraries: loads are rare, and a library's after_load
 * (git_libgit2_init) must not race another thread's first call. */
static pthread_mutex_t dl_lock = PTHREAD_MUTEX_INITIALIZER;

static bool is_loaded(struct e2b_dl_lib *lib)
{
    return __atomic_load_n(&lib->ready, __ATOMIC_ACQUIRE) != 0;
}

static int load_locked(struct e2b_dl_lib *lib, char **ret_msg)
{
    /* Lazy: what e2b calls is looked up by dlsym below; the rest binds as
     * it would had the library been linked (libcurl's closure: 1 ms less). */
    void *h = dlopen(lib->soname, RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        size_t n = strlen(lib->soname);
        if (e && strncmp(e, lib->soname, n) == 0 && strncmp(e + n, ": ", 2) == 0)
            e += n + 2; /* dlerror names the file too */
        *ret_msg = xasprintf("cannot load %s: %s", lib->soname, e ? e : "unknown error");
        return -1;
    }
    for (size_t i = 0; i < lib->count; i++) {
        lib->slots[i] = dlsym(h, lib->names[i]);
        if (!lib->slots[i]) {
            *ret_msg = xasprintf("cannot load %s: it has no %s (not the version e2b was built for?)",
                                 lib->soname, lib->names[i]);
            memset(lib->slots, 0, lib->count * sizeof(*lib->slots));
            dlclose(h);
            return -1;
        }
    }
    if (lib->after_load && lib->after_load() < 0) {
        *ret_msg = xasprintf("cannot initialise %s", lib->soname);
        return -1; /* the handle stays open: the library may hold state now */
    }
    /* Readers test this without the lock: publish only once all is done. */
    __atomic_store_n(&lib->ready, 1, __ATOMIC_RELEASE);
    return 0; /* the handle stays open for the life of the process */
}

static int load(struct e2b_dl_lib *lib, char **ret_msg)
{
    if (is_loaded(lib))
        return 0;
    pthread_mutex_lock(&dl_lock);
    int r = is_loaded(lib) ? 0 : load_locked(lib, ret_msg);
    pthread_mutex_unlock(&dl_lock);
    return r;
}

int e2b_dl_load(struct e2b_dl_lib *lib, struct e2b_error **err)
{
    _cleanup_free_ char *msg = NULL;
    if (load(lib, &msg) < 0)
        return e2b_error_set(err, E2B_ERR_GENERIC, "%s", msg);
    return 0;
}

void e2b_dl_load_or_die(struct e2b_dl_lib *lib)
{
    _cleanup_free_ char *msg = NULL;
    if (load(lib, &msg) < 0) {
        /* Like the dynamic loader when a needed library is missing at start. */
        fprintf(stderr, "e2b: %s\n", msg);
        _exit(127);
    }
}
