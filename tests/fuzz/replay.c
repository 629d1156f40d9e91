/* replay.c - run inputs through a fuzz harness without libFuzzer.
 *
 *   replay-<target> DIR|FILE...
 *
 * Every file named (directories: every file in them, sorted) is passed to
 * LLVMFuzzerTestOneInput once, in one process, as libFuzzer would. The
 * inputs are read before the harness's initializer runs (it may chroot).
 * Exits 0 when every input ran; a harness that finds a bug aborts (ASan,
 * UBSan or its own FUZZ_ASSERT) and the input's name is printed on stderr.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sanitizer/common_interface_defs.h>

/* libFuzzer's convention: the initializer is optional. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

struct input {
    char *name;
    uint8_t *data;
    size_t len;
};

static struct input *inputs;
static size_t n_inputs;
static const char *current;

/* Which input a sanitizer's report (or a harness's FUZZ_ASSERT) is about. */
static void say_input(void)
{
    if (current)
        fprintf(stderr, "replay: the input was %s\n", current);
}

/* A harness's FUZZ_ASSERT aborts, which no sanitizer reports. */
static void on_abort(int sig)
{
    if (current) {
        static const char pre[] = "replay: the input was ";
        (void)!write(2, pre, sizeof(pre) - 1);
        (void)!write(2, current, strlen(current));
        (void)!write(2, "\n", 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void *xrealloc_or_die(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static int read_input(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf = xrealloc_or_die(buf, len + n); /* exactly len bytes: ASan sees reads past the end */
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    inputs = xrealloc_or_die(inputs, (n_inputs + 1) * sizeof(*inputs));
    inputs[n_inputs++] = (struct input){strdup(path), buf ? buf : xrealloc_or_die(NULL, 1), len};
    return 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int collect(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) < 0) {
        fprintf(stderr, "replay: cannot stat '%s': %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode))
        return read_input(path);
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        names = xrealloc_or_die(names, (n + 1) * sizeof(*names));
        names[n] = xrealloc_or_die(NULL, strlen(path) + strlen(de->d_name) + 2);
        sprintf(names[n++], "%s/%s", path, de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        if (collect(names[i]) < 0)
            r = -1;
        free(names[i]);
    }
    free(names);
    return r;
}

int main(int argc, char **argv)
{
    int r = 0;
    for (int i = 1; i < argc; i++)
        if (collect(argv[i]) < 0)
            r = -1;
    if (r < 0 || n_inputs == 0) {
        fprintf(stderr, "%s: no inputs to replay\n", argv[0]);
        return 1;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    __sanitizer_set_death_callback(say_input);
    signal(SIGABRT, on_abort);
    atexit(say_input); /* a harness that exits instead of returning */
    for (size_t i = 0; i < n_inputs; i++) {
        current = inputs[i].name;
        LLVMFuzzerTestOneInput(inputs[i].data, inputs[i].len);
        current = NULL;
        free(inputs[i].data);
        free(inputs[i].name);
    }
    printf("%s: replayed %zu input%s\n", argv[0], n_inputs, n_inputs == 1 ? "" : "s");
    free(inputs);
    return 0;
}
