/* GIL blame derived (analysis): each thread's blame list (exact when eBPF
 * measured it, else sampled), the wait each holder caused, and which
 * threads are the victims of GIL contention and which its aggressors. */
#ifndef GILPROBE_BLAME_ROLES_H
#define GILPROBE_BLAME_ROLES_H
#include "record/metrics.h"

/* A thread is latency-sensitive when, of its time not spent waiting for
 * the GIL, at least this share is blocked (I/O, a timer, a queue, a
 * selector): what it would do if the GIL were free. */
#define BLAME_BLOCKED_PCT 60.0
/* A victim's GIL waits are long beside its bursts of work: its p99 wait
 * at least this many bursts, and at least BLAME_VICTIM_MIN_P99_MS. */
#define BLAME_VICTIM_BURSTS 2.0
#define BLAME_VICTIM_MIN_P99_MS 1.0
/* ... and it waits for the GIL at least this share of its time. */
#define BLAME_VICTIM_MIN_WAIT_PCT 2.0
/* An aggressor caused at least this share of the victims' GIL wait. */
#define BLAME_AGGRESSOR_PCT 10.0

/* Fills every thread's blame figures and role; part of metrics_finish. */
void blame_derive(struct run_metrics *m);
/* The exact figures of a thread (NULL when eBPF did not measure it). */
const struct exact_thread *exact_thread_of(const struct run_metrics *m, pid_t tid);
/* Index of the thread with this TID (UINT32_MAX when none). */
uint32_t thread_index_of(const struct run_metrics *m, pid_t tid);

#endif
