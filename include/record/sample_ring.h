/* The raw samples of the last few seconds (gilprobe watch): every sample's
 * GIL reading and thread observations, kept for a bounded time so that a
 * window of them can be replayed through metrics_observe into a report of
 * its own (a trigger's window, an incident bundle). Threads are kept by
 * TID with their names, so the live metrics may drop exited threads while
 * their recent samples still replay. Memory: the samples of keep_s
 * seconds, whatever the run's length. */
#ifndef GILPROBE_SAMPLE_RING_H
#define GILPROBE_SAMPLE_RING_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "record/metrics.h"
#include "util/addrmap.h"

struct ring_reading {
    double t; /* CLOCK_MONOTONIC seconds */
    uint64_t cpu, ivcs;
};

struct ring_thread {
    bool used;
    pid_t tid;
    uint64_t tstate;
    char name[32];
    char python_name[THREAD_NAME_MAX];
    const char *python_name_why;
    bool exited;
    double first_seen, last_seen; /* sample times */
    struct ring_reading *readings; /* CPU counters, one a second, circular */
    uint32_t nreadings, next_reading;
    uint32_t replay_idx; /* scratch for sample_ring_replay */
};

struct ring_sample {
    double time; /* seconds since the sampler started */
    bool gil_valid;
    int locked;
    uint64_t switch_number;
    struct thread_obs *t; /* .thread: a slot in ring.threads */
    uint32_t n;
};

struct sample_ring {
    double keep_s;
    struct ring_sample *s; /* circular */
    uint32_t cap, head, count;
    struct ring_thread *threads;
    uint32_t nthreads, capthreads;
    struct addrmap slot_of_tid; /* tid -> slot + 1 */
    uint32_t max_readings;
    double origin; /* CLOCK_MONOTONIC time of sample time 0 (set by the caller) */
    bool oom; /* a sample could not be kept */
};

void sample_ring_init(struct sample_ring *r, double keep_s);
void sample_ring_free(struct sample_ring *r);
/* Keeps one sample (m: the live metrics its indices refer to), dropping
 * those older than keep_s before it. */
void sample_ring_push(struct sample_ring *r, const struct run_metrics *m, const struct sample_obs *s);
/* Once a second: every live thread's CPU counters and names as the live
 * metrics have them now, and which threads exited. */
void sample_ring_note_threads(struct sample_ring *r, const struct run_metrics *m);
/* The time of the newest sample kept (0: none). */
double sample_ring_newest(const struct sample_ring *r);
/* Feeds the samples timed in [from, to] into out (metrics_init'ed by the
 * caller, sharing the live stack table: see watch), with out's threads
 * made from the ring's and times counted from `from`; copies the live
 * run's settings (rate, stall threshold, interval, ...). Returns the
 * number of samples replayed. */
uint64_t sample_ring_replay(struct sample_ring *r, double from, double to,
                            const struct run_metrics *live, struct run_metrics *out);

#endif
