/* The per-second timeline of a long run (gilprobe watch): one entry per
 * window of the sampler, kept for a bounded number of seconds (a ring):
 * GIL figures, exact GIL wait percentiles, per-thread shares, lock waits,
 * event loops, thread counts, memory. Fixed-size entries, allocated once:
 * memory is keep_s entries whatever the run's length. */
#ifndef GILPROBE_TIMELINE_H
#define GILPROBE_TIMELINE_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "record/metrics.h"

#define TIMELINE_THREADS 64 /* per second, the most held + waiting first */
#define TIMELINE_LOCKS 8
#define TIMELINE_LOOPS 8

struct timeline_thread {
    pid_t tid;
    char name[THREAD_NAME_MAX];
    double held_pct, wait_pct, lock_wait_pct, cpu_pct;
};

struct timeline_lock {
    uint64_t addr;
    double wait_pct;
    uint32_t waiters;
};

struct timeline_loop {
    pid_t tid;
    double busy_pct, stall_max_ms;
    uint32_t stalls;
};

struct timeline_entry {
    double t;       /* end of the second, seconds since the watch started */
    double unix_s;  /* the same as wall-clock time */
    double held_pct, contended_pct, waiters_mean;
    uint32_t waiters_max;
    double handoffs_per_s; /* < 0: not measured */
    bool exact;            /* exact (eBPF) GIL figures for this second */
    double exact_held_pct, wait_p50_ms, wait_p99_ms, wait_max_ms, hold_p99_ms, hold_max_ms;
    double runnable_mean; /* threads holding, waiting for or running without the GIL */
    uint32_t python_threads, os_threads;
    uint64_t rss_kb;
    uint32_t nthreads, nlocks, nloops;
    struct timeline_thread threads[TIMELINE_THREADS];
    struct timeline_lock locks[TIMELINE_LOCKS];
    struct timeline_loop loops[TIMELINE_LOOPS];
};

struct timeline {
    struct timeline_entry *e; /* circular, cap entries */
    uint32_t cap, head, count;
};

/* 0, or -1 when the memory for keep_s entries is not there. */
int timeline_init(struct timeline *tl, double keep_s);
void timeline_free(struct timeline *tl);
/* One second from a window's figures (metrics_window_finish done, m->exact
 * the second's exact figures when valid); the oldest entry goes when full. */
void timeline_add(struct timeline *tl, const struct run_metrics *m, double t, double unix_s,
                  uint64_t rss_kb);
/* The i-th kept entry, oldest first. */
const struct timeline_entry *timeline_at(const struct timeline *tl, uint32_t i);

#endif
