/* A figure labelled exact must be checked: the eBPF GIL timings against
 * the sampled ones of the same run (GIL held %, each thread's GIL wait %).
 * They measure the same thing two ways; a difference beyond what sampling
 * error allows means the exact mode missed acquisitions or releases, and
 * the report says so instead of printing the exact section as truth. */
#ifndef GILPROBE_EXACT_CHECK_H
#define GILPROBE_EXACT_CHECK_H

#include "record/metrics.h"

/* Agreement allowed beyond sampling error: the two methods draw the line
 * between waiting and holding in slightly different places (a woken
 * waiter not yet on a CPU, a hand-off in flight); measured 0-3 points
 * apart on an idle machine and up to 5 under heavy load (README, "Exact
 * GIL timings"). Missed acquisitions or releases are tens of points. */
#define EXACT_CHECK_FLOOR_PCT 5.0
/* Standard errors of the sampled share allowed on top of the floor. */
#define EXACT_CHECK_SIGMAS 3.0
/* Threads compared: sampled at least this share of the run (a thread
 * that lived part of it has its exact share over the whole window). */
#define EXACT_CHECK_MIN_LIFE 0.9

/* A sampler short of CPU misses its ticks mostly while the target's threads
 * hold CPUs (running, so holding the GIL): its held share then leans low.
 * Measured under three CPU hogs on 2 cores: 6-8% of the ticks missed and
 * the sampled held share 1.6-5.4 points under the exact one; at nice -20,
 * under 0.5% missed and 0.7-1.2 points. Above this share the report says so. */
#define EXACT_CHECK_MISSED_NOTE_PCT 2.0

/* Fills m->exact.check from m (after the sampled figures are derived). */
void exact_check(struct run_metrics *m);
/* The tolerance for a share p (%) sampled n times while the state changed
 * about k times (acquisitions): floor + sigmas x its standard error. */
double exact_check_tolerance(double p_pct, uint64_t n, uint64_t k);

#endif
