/* fuzz.h - what every harness in tests/fuzz shares.
 *
 * A harness is tests/fuzz/fuzz-<target>.c defining LLVMFuzzerTestOneInput
 * (and LLVMFuzzerInitialize when it needs set-up). `make fuzz` links it with
 * libFuzzer; `make fuzz-replay` (part of `make check`) links it with
 * replay.c, which runs every file of tests/fuzz/corpus/<target>/ through it
 * under ASan+UBSan. A harness aborts on any broken invariant it checks, so
 * a replay or a fuzzer run stops there with the input that broke it.
 */
#ifndef E2B_FUZZ_H
#define E2B_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Abort with a message: an invariant of the code under test is broken. */
#define FUZZ_ASSERT(cond)                                                              \
    do {                                                                               \
        if (!(cond))                                                                   \
            fuzz_fail(__FILE__, __LINE__, #cond);                                      \
    } while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *what);

/* A private mount namespace whose root is a fresh tmpfs of size_mb (root,
 * or a user namespace as root in it): what a harness that writes files
 * (layers, envd) does to the machine stays in there. Load every library the
 * code under test opens with dlopen first: the host's are gone after.
 * The machine's /proc is there read-only (sanitizers read it). The working
 * directory stays outside (libFuzzer's corpus and artifact paths are
 * relative to it): inside, use absolute paths only. */
int fuzz_jail_enter(unsigned size_mb);
/* Remove everything in the jail's root except /proc (read-only) and the
 * names in keep (NULL-ended). */
void fuzz_jail_wipe(const char *const *keep);
/* Write a file (its parents made), for a jail's fixtures. */
void fuzz_write_file(const char *path, const char *text, unsigned mode);

/* What the jail holds: one line per path (type and mode, owner, size, link
 * count, inode, mtime, ctime, symlink target), sorted. Not /proc, nor the
 * trees in skip (NULL-ended); for the paths in loose (NULL-ended) the link
 * count and ctime are left out (a link to them inside a skipped tree may
 * come and go). Other file systems mounted in are not entered. */
struct fuzz_tree {
    char **lines;
    size_t n;
};
void fuzz_tree_snapshot(struct fuzz_tree *t, const char *const *skip, const char *const *loose);
/* Abort, after printing what differs, unless a and b are the same. */
void fuzz_tree_assert_same(const struct fuzz_tree *a, const struct fuzz_tree *b);
void fuzz_tree_release(struct fuzz_tree *t);

#endif
