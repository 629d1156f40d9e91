/* cgroup.h - one sandbox's cgroups: limits, freezer, figures, removal.
 * cgroup v2 when /sys/fs/cgroup is unified, else the v1 hierarchies
 * (memory, pids, cpu, cpuacct, freezer, devices), each at <hierarchy>/e2b/<id>.
 * On v1 the devices controller allows only the nodes a sandbox's /dev has
 * (null, zero, full, random, urandom, tty, ptmx, pts): a device node made or
 * found anywhere else cannot be opened. */
#ifndef E2B_CGROUP_H
#define E2B_CGROUP_H

#include "error.h"
#include <sys/types.h>

struct e2b_cgroup_limits {
    uint64_t memory_bytes; /* 0: none */
    uint64_t pids_max;     /* 0: none */
    unsigned cpu_count;    /* 0: none; else a quota of cpu_count CPUs */
    bool loop_devices;     /* v1 devices: also loop-control and loop devices, so init
                            * can attach the template image (it drops them after) */
};

struct e2b_cgroup_stats {
    uint64_t cpu_usage_ns;
    uint64_t memory_bytes;
    uint64_t memory_limit;
    uint64_t pids;
    bool oom_killed;       /* the memory limit killed something */
};

int e2b_cgroup_create(const char *id, const struct e2b_cgroup_limits *lim, struct e2b_error **err);
int e2b_cgroup_add(const char *id, pid_t pid, struct e2b_error **err);
/* A helper of the sandbox that runs outside it (slirp4netns opens the host's
 * /dev/net/tun): every controller but devices. */
int e2b_cgroup_add_helper(const char *id, pid_t pid, struct e2b_error **err);
/* Take a process of a sandbox out of its creator's cgroups, so that killing
 * the creator's session scope or CI job leaves its sandboxes running, as a
 * daemon's would: into <hierarchy>/e2b (v2: e2b/supervisors) for the
 * systemd and unified hierarchies, and with `all` (the supervisor) for the
 * controllers too. Best effort (quiet); root only. */
void e2b_cgroup_leave_creator(pid_t pid, bool all);
/* Open a file of the frozen part (v1: freezer/e2b/<id>/sandbox/FILE), or -1
 * where there is none (v2, or no freezer hierarchy). */
int e2b_cgroup_open_frozen_part(const char *id, const char *file, int flags);
/* For a checkpoint (CRIU): the cgroup directory whose freezer holds all of
 * the sandbox, init too (v1: freezer/e2b/<id>; v2: e2b/<id>), and where the
 * sandbox is in each hierarchy, as CRIU's --cgroup-root wants it
 * ("memory:/e2b/<id>" per v1 controller; v2: "/e2b/<id>"). malloc'd. */
char *e2b_cgroup_freezer_dir(const char *id);
char **e2b_cgroup_roots(const char *id);
/* Take back loop-control and the loop devices (init, once the image is mounted). */
int e2b_cgroup_drop_loop(const char *id, struct e2b_error **err);
/* On v1 the freezer freezes <id>/sandbox, where envd and everything below
 * it live, not init at <id>: frozen v1 tasks ignore SIGKILL, so init stays
 * free to thaw and kill them if the supervisor dies while it is paused. */
int e2b_cgroup_freeze(const char *id, bool frozen, struct e2b_error **err);
/* A checkpoint of a paused sandbox (CRIU seizes a frozen tree only through
 * a frozen cgroup that holds all of it): whole, the freeze moves from the
 * part below init to all of the sandbox, init too; !whole, back. Nothing
 * to do on v2, where one freezer holds all. */
int e2b_cgroup_freeze_whole(const char *id, bool whole, struct e2b_error **err);
int e2b_cgroup_stats(const char *id, struct e2b_cgroup_stats *ret, struct e2b_error **err);
/* Kill what is left in it and remove it; quiet, safe to repeat. */
void e2b_cgroup_destroy(const char *id);

#endif
