/* Worker pools seen from their threads: several threads that run the same
 * function (a ThreadPoolExecutor's workers, a consumer started N times)
 * and are idle nearly all the time (the pool is larger than its load) or
 * never idle (work waits for a free worker). Information, not a failure. */
#ifndef GILPROBE_DIAGNOSE_POOLS_H
#define GILPROBE_DIAGNOSE_POOLS_H

#include "analysis/diagnose.h"

/* Threads running one function that make a pool worth a remark. */
#define POOL_MIN_WORKERS 4
/* A worker idle (waiting for work) at least this share of the run. */
#define POOL_IDLE_PCT 90.0
/* A worker at most this idle is occupied by work the whole time. */
#define POOL_OCCUPIED_IDLE_MAX_PCT 5.0
/* Workers compared: sampled through at least this share of the run. */
#define POOL_MIN_LIFE 0.9

void rule_worker_pools(const struct run_metrics *m, struct diagnosis *d);

#endif
