/* What the scenarios need beyond GIL and loops (S4, S6, S8): the target's
 * process tree, the CPUs it may use, and its memory. Read from /proc and
 * /sys at the start and the end of a run. */
#ifndef GILPROBE_SYSTEM_H
#define GILPROBE_SYSTEM_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cpu_view {
    int logical;          /* online CPUs */
    int physical;         /* distinct (package, core) pairs */
    int affinity;         /* CPUs the target may run on */
    double quota_cpus;    /* cgroup v2 cpu.max quota/period; 0: no limit */
    double steal_pct;     /* CPU steal over the run (VMs) */
    int running_start, running_end; /* runnable tasks system-wide (loadavg) */
};

struct tree_view {
    int children;         /* descendants, all depths */
    int cpu_bound_children; /* descendants using >= a quarter CPU over the run (end only) */
    double children_cpu_pct; /* their CPU use together, % of one CPU */
    int zombies;          /* of them, exited but not reaped */
    pid_t zombie_parent;  /* the process that should reap most of them */
    int python_children;  /* descendants that are CPython processes */
    int busy_children;    /* descendants that were running (state R) */
};

struct mem_view {
    uint64_t rss_kb;
    uint64_t stacks_reserved_kb; /* thread stack mappings (virtual) */
    uint64_t stacks_resident_kb; /* of which resident */
    int stacks;                  /* blocked threads whose stack was found */
};

/* A child's CPU counters at the start of the run: which children are
 * CPU-bound is told by their deltas at the end. */
struct child_start {
    pid_t pid;
    uint64_t ticks, demand_ns;
};

struct system_view {
    struct cpu_view cpu;
    struct tree_view tree_start, tree_end;
    struct mem_view mem_start, mem_end;
    double seconds;              /* between start and end */
    /* The last reading while the target was alive (system_observe): what
     * the end figures are when it exits before the end of the run. */
    struct tree_view tree_last;
    uint64_t rss_last_kb, ticks_last;
    double last_seconds;
    bool have_last;
    unsigned observations;
    double target_cpu_pct;       /* the target process itself, over the run */
    /* Start-of-run counters the end's deltas need (system_begin allocates
     * children_start, system_end frees it). */
    uint64_t cpu_total_start, cpu_steal_start, target_ticks_start;
    struct child_start *children_start;
    int nchildren_start;
    double children_growth_per_s;
    double rss_growth_kb_per_s;
};

/* Start-of-run readings; stat_state keeps /proc/stat for the steal delta. */
void system_begin(pid_t pid, struct system_view *v);
/* `gone`: the target exited during the run; the end figures are then the
 * last ones system_observe saw (or the start's), never a read of a
 * process that is no more. */
void system_end(pid_t pid, struct system_view *v, double seconds, bool gone);
/* A cheap reading during the run (RSS, process tree, CPU ticks), kept as
 * the last seen while the target lives. */
void system_observe(pid_t pid, struct system_view *v, double seconds);

/* Live CPython processes below pid (all depths), at most max. */
int system_python_descendants(pid_t pid, pid_t *out, int max);

/* Exposed for tests: count online CPUs and physical cores under a sysfs root. */
void system_topology(const char *sysfs_cpu_root, int *logical, int *physical);

#endif
