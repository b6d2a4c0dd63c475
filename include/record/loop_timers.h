/* An event loop's timers, measured: from its timer heap read now and then
 * (python/asyncio_timers.h) and the loop's own busy stretches, how late
 * its timers ran and which timeouts (wait_for / asyncio.timeout) expired
 * because the loop was busy at their deadline.
 *
 * A timer that left the heap after its deadline, not cancelled when last
 * seen, ran: late by the rest of the busy stretch its deadline fell in (0
 * when the loop was in its selector then: it woke for it). A timeout seen
 * overdue and not cancelled expires when the loop gets to it: counted,
 * and counted again for the stall it was overdue in; so is one seen
 * pending inside a stall that ended after its deadline (a stalled loop's
 * heap does not change: nothing could cancel it). Timers that live
 * less than the read interval are seen only when a read falls in their
 * life. Memory: fixed, whatever the run's length. */
#ifndef GILPROBE_LOOP_TIMERS_H
#define GILPROBE_LOOP_TIMERS_H
#include <stdbool.h>
#include <stdint.h>

#include "python/asyncio_timers.h"
#include "util/addrmap.h"

#define LOOP_TIMERS_TRACKED 2048 /* timers followed at once */
#define LOOP_STRETCHES 512       /* recent busy stretches kept */
#define LOOP_LAGS_KEPT 4096      /* lateness values kept (a uniform sample beyond) */

struct loop_timer_seen {
    uint64_t handle;
    double when, last_seen; /* seconds into the run */
    bool timeout, cancelled, overdue;
};

struct loop_stretch {
    double start, end;
};

struct loop_timers {
    bool read; /* a timer heap was read */
    /* ... while its loop was in its selector: deadlines before are over */
    bool seen_idle;
    uint64_t implausible; /* timers dropped: a deadline the loop had served already */
    struct loop_timer_seen *v, *next;
    uint32_t n;
    struct addrmap index; /* handle -> index + 1 into v */
    struct loop_stretch ring[LOOP_STRETCHES];
    uint32_t ring_head, ring_n;
    uint32_t run_expired; /* timeouts seen overdue in the busy stretch in progress */
    /* the window's figures */
    uint64_t ran, late;          /* timers seen run; of them, late */
    double lags[LOOP_LAGS_KEPT]; /* ms; a reservoir sample when more ran */
    uint64_t rng;
    double lag_sum_ms, lag_max_ms;
    uint64_t timeouts_seen, timeouts_expired, timeouts_expired_in_stalls;
    uint32_t timeouts_pending, timeouts_pending_max; /* at the last read; the most */
    uint64_t heap_max;                               /* the longest heap read */
    bool untracked;                                  /* more timers than followed: some were not */
    /* derived */
    double lag_p50_ms, lag_p99_ms, lag_mean_ms;
};

/* One read of the heap at t (seconds into the run): n timers of `total`,
 * deadlines on CLOCK_MONOTONIC less `clock`. busy: the loop is in a busy
 * stretch (since run_start) now. */
void loop_timers_scan(struct loop_timers *lt, double t, const struct asyncio_timer *v, uint32_t n,
                      uint64_t total, double clock, bool busy, double run_start);
/* A busy stretch ended; stall: it was one. How many timeouts it made
 * expire (the stretch's, now counted). */
uint32_t loop_timers_stretch_end(struct loop_timers *lt, double start, double end, bool stall);
void loop_timers_derive(struct loop_timers *lt);
void loop_timers_window_reset(struct loop_timers *lt);
void loop_timers_free(struct loop_timers *lt);

#endif
