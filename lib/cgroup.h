/* cgroup.h - one sandbox's cgroups: limits, freezer, figures, removal.
 * cgroup v2 when /sys/fs/cgroup is unified, else the v1 hierarchies
 * (memory, pids, cpu, cpuacct, freezer), each at <hierarchy>/e2b/<id>. */
#ifndef E2B_CGROUP_H
#define E2B_CGROUP_H

#include "error.h"
#include <sys/types.h>

struct e2b_cgroup_limits {
    uint64_t memory_bytes; /* 0: none */
    uint64_t pids_max;     /* 0: none */
    unsigned cpu_count;    /* 0: none; else a quota of cpu_count CPUs */
};

struct e2b_cgroup_stats {
    uint64_t cpu_usage_ns;
    uint64_t memory_bytes;
    uint64_t memory_limit;
    uint64_t pids;
    bool oom_killed;       /* the memory limit killed something */
};

bool e2b_cgroup_v2(void);
int e2b_cgroup_create(const char *id, const struct e2b_cgroup_limits *lim, struct e2b_error **err);
int e2b_cgroup_add(const char *id, pid_t pid, struct e2b_error **err);
int e2b_cgroup_freeze(const char *id, bool frozen, struct e2b_error **err);
int e2b_cgroup_stats(const char *id, struct e2b_cgroup_stats *ret, struct e2b_error **err);
/* Kill what is left in it and remove it; quiet, safe to repeat. */
void e2b_cgroup_destroy(const char *id);
/* Does any cgroup directory of this sandbox still exist? (for tests/reaping) */
bool e2b_cgroup_exists(const char *id);

#endif
