/* Diagnoses from GIL blame (analysis/blame_roles.h): S2's victims and
 * aggressors, and the convoy effect (CPython issue 7946): an I/O thread
 * that, after every wake-up, waits about one switch interval for the GIL a
 * CPU-bound thread holds, its throughput capped near 1/interval. */
#ifndef GILPROBE_DIAGNOSE_BLAME_H
#define GILPROBE_DIAGNOSE_BLAME_H

#include "analysis/diagnose.h"

/* Convoy: enough wake-ups to tell (a second) ... */
#define CONVOY_MIN_WAKEUPS_PER_S 20.0
/* ... each waiting between these multiples of the switch interval on
 * average ... */
#define CONVOY_WAIT_MIN_INTERVALS 0.5
#define CONVOY_WAIT_MAX_INTERVALS 1.5
/* (exact: where each wait is known, a convoy the CPUs' load breaks now and
 * then - the woken holder not scheduled before the I/O thread is back, so
 * it takes the GIL at once - still is one when at least this share of the
 * wake-ups wait half an interval or more; the mean then falls to half an
 * interval: measured beside a test suite's load, 310 wake-ups/s where 165
 * were convoyed and 900 would be free) */
#define CONVOY_LONG_WAIT_SHARE 0.3
#define CONVOY_WAIT_MIN_INTERVALS_EXACT 0.25
/* ... with bursts of work shorter than this share of an interval ... */
#define CONVOY_BURST_MAX_INTERVALS 0.25
/* ... most of it behind one thread that always wants the GIL. */
#define CONVOY_HOLDER_SHARE_PCT 50.0
#define CONVOY_HOLDER_GIL_PCT 80.0

/* S2's finding `f` names the victims and aggressors when there are any:
 * its verdict, culprit, evidence and advice are then theirs. */
void diagnose_victims(const struct run_metrics *m, struct finding *f);
void rule_convoy(const struct run_metrics *m, struct diagnosis *d);

#endif
