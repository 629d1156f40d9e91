/* debug.c - hidden commands that expose one library step, for benchmarks. */
#include "cmd.h"
#include "ext4.h"
#include "usage.h"

#include <time.h>

const struct e2b_opt opts_debug_ext4[] = {
    E2B_OPT_INT(0, "headroom-mb", "MB", "free space to leave in the image (default 0)"),
    E2B_OPT_ARG("dir", E2B_OPTF_REQUIRED, "root directory tree"),
    E2B_OPT_ARG("image", E2B_OPTF_REQUIRED, "ext4 image to write"),
    E2B_OPT_END,
};

/* The root tree -> rootfs.ext4 step of `template build`, alone, so
 * tests/bench/build.sh can time it against mke2fs -d on the same tree. */
int cmd_debug_ext4(struct e2b_ctx *ctx, struct e2b_args *args)
{
    _cleanup_error_ struct e2b_error *err = NULL;
    long long headroom = e2b_args_int(args, "headroom-mb", 0);
    uint64_t size_mb = 0;
    struct timespec t0, t1;
    if (headroom < 0)
        return e2b_usage_error("__ext4", "--headroom-mb must be 0 or more");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (e2b_ext4_from_dir(e2b_args_str(args, "dir"), e2b_args_str(args, "image"), (uint64_t)headroom,
                          &size_mb, &err) < 0)
        return e2b_fail(err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* the step's own time, without this process's start (shared libraries) */
    if (!ctx->quiet)
        fprintf(stderr, "%s: %llu MiB in %.3fs\n", e2b_args_str(args, "image"), (unsigned long long)size_mb,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
