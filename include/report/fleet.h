/* What `gilprobe serve` exports: per target, the running totals of the
 * collectors' per-second records (report/export_record.h) — counters of
 * seconds and counts, histogram buckets, the latest gauges — with every
 * label set bounded (the busiest threads and lock sites by name, the rest
 * under "other"), so that the series count stays bounded whatever the
 * targets do. Not thread-safe: the server holds a lock around it. */
#ifndef GILPROBE_FLEET_H
#define GILPROBE_FLEET_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "record/metrics.h"
#include "target/cgroup_ids.h"

#define FLEET_THREAD_LABELS 16 /* per target, then "other" */
#define FLEET_LOCK_LABELS 16
#define FLEET_LABEL_MAX 96
#define FLEET_FINDINGS 16
#define FLEET_STALL_BOUNDS 8
extern const double fleet_stall_bounds_s[FLEET_STALL_BOUNDS];
#define FLEET_LAG_BOUNDS 8 /* how late asyncio timers ran */
extern const double fleet_lag_bounds_s[FLEET_LAG_BOUNDS];

struct fleet_named {
    char name[FLEET_LABEL_MAX];
    double s; /* seconds */
};

struct fleet_thread {
    char name[FLEET_LABEL_MAX];
    double gil_wait_s, gil_held_s;
};

struct fleet_hist {
    uint64_t le[EXACT_LE_BOUNDS + 1]; /* per bucket, not cumulative */
    uint64_t count;
    double sum_s;
};

struct fleet_target {
    pid_t pid;
    bool info_seen; /* the collector said what the target is */
    char exe[256], python_version[32];
    bool free_threaded, gil_enabled;
    struct cgroup_ids ids;
    uint64_t records;
    uint64_t samples, missed_ticks, gil_unreadable;
    double held_s, contended_s;
    bool exact; /* exact GIL figures came at least once */
    uint64_t acquisitions, handoffs;
    struct fleet_hist wait, hold;
    double state_s[TS_COUNT];
    struct fleet_thread threads[FLEET_THREAD_LABELS + 1]; /* the last: "other" */
    uint32_t nthreads;
    struct fleet_named locks[FLEET_LOCK_LABELS + 1];
    uint32_t nlocks;
    double loop_busy_s;
    bool loops_seen;
    uint64_t stall_le[FLEET_STALL_BOUNDS + 1], stall_count;
    double stall_sum_s;
    uint64_t lag_le[FLEET_LAG_BOUNDS + 1];
    double lag_sum_s;
    bool timers_seen;
    uint64_t timeouts_expired[2]; /* outside stalls, in stalls */
    int64_t tasks;                /* alive at the last figures (-1: not counted) */
    uint32_t python_threads, os_threads;
    struct {
        char scenario[8], severity[12];
    } findings[FLEET_FINDINGS];
    uint32_t nfindings;
    double record_at; /* CLOCK_MONOTONIC s of the last figures (serve sets it) */
};

struct fleet {
    struct fleet_target *t;
    uint32_t n, cap;
};

void fleet_init(struct fleet *f);
void fleet_free(struct fleet *f);
/* The target's record, added when new; NULL on OOM. */
struct fleet_target *fleet_target(struct fleet *f, pid_t pid);
struct fleet_target *fleet_find(struct fleet *f, pid_t pid);
/* Its series go (they become stale in Prometheus). */
void fleet_remove(struct fleet *f, pid_t pid);
/* One line of a collector; false when it is not a record (ignored). */
bool fleet_apply_line(struct fleet_target *t, const char *line);

/* The exposition: OpenMetrics 1.0 text, or Prometheus text 0.0.4. */
void fleet_render(const struct fleet *f, bool openmetrics, FILE *out);

#endif
