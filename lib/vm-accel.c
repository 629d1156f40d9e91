/* vm-accel.c - see vm-accel.h */
#include "vm-accel.h"
#include "config.h"
#include "fsutil.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <time.h>

bool e2b_vm_kvm_usable(char **why)
{
    char *reason = NULL;
    int fd = -1, vmfd = -1;
    if (access("/sys/module/kvm_pvm", F_OK) == 0 && access("/sys/module/kvm_intel", F_OK) < 0 &&
        access("/sys/module/kvm_amd", F_OK) < 0) {
        reason = xstrdup("/dev/kvm is PVM (kvm_pvm), which cannot boot a stock guest kernel");
    } else if ((fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0) {
        reason = xasprintf("cannot open /dev/kvm: %s", strerror(errno));
    } else if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        reason = xstrdup("/dev/kvm speaks another API version");
    } else if ((vmfd = ioctl(fd, KVM_CREATE_VM, 0)) < 0) {
        reason = xasprintf("/dev/kvm cannot create a VM: %s", strerror(errno));
    }
    if (vmfd >= 0)
        close(vmfd);
    if (fd >= 0)
        close(fd);
    if (why)
        *why = reason;
    else
        free(reason);
    return reason == NULL;
}

#if defined(__x86_64__) || defined(__i386__)
static uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static int64_t ns_of(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* A TSC reading and the clock's time at it (the middle of two clock
 * readings around it, which must be close: not preempted between them). */
static bool sample(uint64_t *tsc, int64_t *ns)
{
    for (int i = 0; i < 20; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC_RAW, &a);
        uint64_t t = rdtsc();
        clock_gettime(CLOCK_MONOTONIC_RAW, &b);
        if (ns_of(&b) - ns_of(&a) < 20000) {
            *tsc = t;
            *ns = (ns_of(&a) + ns_of(&b)) / 2;
            return true;
        }
    }
    return false;
}

/* What /proc/cpuinfo says, where the TSC keeps one rate (constant_tsc). */
static unsigned long cpuinfo_khz(void)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/cpuinfo", "re");
    char line[4096];
    double mhz = 0;
    bool constant = false;
    while (f && fgets(line, sizeof(line), f) && !(mhz > 0 && constant)) {
        if (e2b_str_has_prefix(line, "cpu MHz") && strchr(line, ':'))
            mhz = strtod(strchr(line, ':') + 1, NULL);
        if (e2b_str_has_prefix(line, "flags") && strstr(line, " constant_tsc"))
            constant = true;
    }
    return constant && mhz > 0 ? (unsigned long)(mhz * 1000 + 0.5) : 0;
}

static unsigned long measure_khz(void)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        uint64_t t0, t1;
        int64_t n0, n1;
        if (!sample(&t0, &n0))
            continue;
        struct timespec d = { 0, 20 * 1000000 };
        while (nanosleep(&d, &d) < 0 && errno == EINTR)
            ;
        if (sample(&t1, &n1) && n1 > n0 && t1 > t0)
            return (unsigned long)((double)(t1 - t0) * 1e6 / (double)(n1 - n0) + 0.5);
    }
    return cpuinfo_khz(); /* a host too busy to measure */
}

/* Measured once a boot of the host (it takes 20 ms a create), kept in
 * <data dir>/cache/vm/tsc-khz as "BOOT_ID KHZ". */
unsigned long e2b_vm_tsc_khz(void)
{
    _cleanup_free_ char *boot = NULL, *data = e2b_data_dir(), *have = NULL;
    _cleanup_free_ char *dir = xasprintf("%s/cache/vm", data);
    _cleanup_free_ char *p = e2b_path_join(dir, "tsc-khz");
    if (e2b_read_file("/proc/sys/kernel/random/boot_id", &boot, NULL, NULL) < 0)
        return measure_khz();
    boot[strcspn(boot, "\n")] = '\0';
    unsigned long khz = 0;
    char id[64] = "";
    if (e2b_read_file_untrusted(p, 128, &have, NULL, NULL) == 0 &&
        sscanf(have, "%63s %lu", id, &khz) == 2 && STREQ(id, boot) && khz)
        return khz;
    khz = measure_khz();
    _cleanup_free_ char *line = xasprintf("%s %lu\n", boot, khz);
    if (khz && e2b_mkdir_p(dir, 0755, NULL) == 0)
        e2b_write_file_atomic(p, line, strlen(line), 0644, NULL);
    return khz;
}
#else
unsigned long e2b_vm_tsc_khz(void) { return 0; }
#endif

int e2b_vm_accel(const char **ret, char **why, struct e2b_error **err)
{
    const char *force = getenv("E2B_VM_ACCEL");
    char *reason = NULL;
    if (why)
        *why = NULL;
    if (force && *force) {
        if (STREQ(force, "tcg")) {
            *ret = "tcg";
            if (why)
                *why = xstrdup("E2B_VM_ACCEL=tcg");
            return 0;
        }
        if (!STREQ(force, "kvm"))
            return e2b_error_set(err, E2B_ERR_INVALID, "E2B_VM_ACCEL must be kvm or tcg, not '%s'",
                                 force);
        if (!e2b_vm_kvm_usable(&reason)) {
            e2b_error_set(err, E2B_ERR_UNSUPPORTED, "E2B_VM_ACCEL=kvm, but %s", reason);
            free(reason);
            return -1;
        }
        *ret = "kvm";
        return 0;
    }
    *ret = e2b_vm_kvm_usable(&reason) ? "kvm" : "tcg";
    if (why)
        *why = reason;
    else
        free(reason);
    return 0;
}
