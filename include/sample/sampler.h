/* The sampler: reads the GIL word, every thread's blocking syscall and its
 * Python stack at a fixed rate without stopping the target, and feeds each
 * sample to the metrics. */
#ifndef GILPROBE_SAMPLER_H
#define GILPROBE_SAMPLER_H
#include <signal.h>
#include <stdbool.h>

#include "python/pyobj.h"
#include "python/pyrt.h"
#include "python/snapshot.h"
#include "record/metrics.h"
#include "sample/native_sample.h"
#include "util/errors.h"

#define SAMPLER_DEFAULT_SECONDS 5.0
#define SAMPLER_DEFAULT_HZ 1000.0
#define SAMPLER_MAX_HZ 100000.0
/* How often the thread list and per-thread CPU counters are re-read. */
#define SAMPLER_REFRESH_S 0.1
/* ...or less often, up to this, when a refresh is expensive (many threads). */
#define SAMPLER_REFRESH_MAX_S 0.5
/* ...and in full at least this often when the kernel's thread list (the
 * eBPF reader's) shows no thread started or ended: in between, only the
 * CPU counters (a thread list read cost as much as the samples). */
#define SAMPLER_FULL_REFRESH_S 1.0
/* How often the memory map is read for uvloop (until found): every 2 s at
 * first (a program started by `run` imports it early), then a tenth of the
 * time since the first look, up to 30 s (a collector of serve's sits on a
 * process for days; the map of a big one costs as much as its samples). */
#define SAMPLER_UVLOOP_CHECK_S 2.0
#define SAMPLER_UVLOOP_CHECK_MAX_S 30.0

struct sampler_options {
    double duration_s;
    double rate_hz;
    volatile sig_atomic_t *stop; /* set asynchronously to end early */
    bool no_bpf;                 /* never use eBPF, even where it works */
    bool no_asyncio;             /* no reads of asyncio's tasks, timers and counts */
    struct native_sampling *native; /* --native: mixed stacks; NULL: off */
    void (*progress)(double elapsed_s, double duration_s, uint64_t samples, void *arg);
    void *progress_arg;
    /* Called as the sampled window starts (end false) and as it ends (end
     * true), with its start or end time (CLOCK_MONOTONIC seconds), inside
     * the set-up and tear-down around it: other measurements can cover the
     * same stretch of time. */
    void (*on_bounds)(bool end, double at, void *arg);
    void *bounds_arg;
    /* Called with each fresh thread list (every SAMPLER_REFRESH_S), or
     * with NULL when the list was not read again (nothing changed). */
    void (*on_refresh)(const struct snapshot *snap, void *arg);
    void *refresh_arg;
    /* Windowed runs: called every window_s seconds with m->duration_s and
     * m->samples_requested set for the window since the last call; the
     * callee typically derives the window's figures and starts the next
     * one (metrics_window_finish, metrics_window_reset). At the end, m's
     * duration covers the window in progress only. */
    double window_s;
    void (*on_window)(struct run_metrics *m, void *arg);
    void *window_arg;
    /* Set asynchronously (serve's collectors: a signal at each scrape) to
     * end the window in progress at once - unless it is younger than
     * window_min_s (a burst of scrapes costs a window per window_min_s at
     * most). The sampler clears it. NULL: windows end every window_s. */
    volatile sig_atomic_t *end_window_now;
    double window_min_s;
    /* After each window: threads that exited leave m's table (their
     * thread_obs indices are void from then on), so a run of hours with
     * thread churn keeps a table the size of the live threads. */
    bool prune_exited;
    /* Sample times count from this CLOCK_MONOTONIC time (0: the run's
     * start): a watch that attaches again after an exec keeps one clock. */
    double time_origin;
    /* Called with every sample as metrics_observe got it (thread indices
     * into m->threads). */
    void (*on_sample)(const struct run_metrics *m, const struct sample_obs *s, void *arg);
    void *sample_arg;
};

struct sampler_cost {
    double cpu_s;               /* gilprobe's own CPU time while sampling */
    uint64_t thread_samples;    /* sum over samples of threads sampled */
    double us_per_thread_sample;
    uint64_t syscalls;          /* process_vm_readv calls */
    bool bpf_reader;            /* the BPF sample reader was available */
    uint64_t bpf_samples;       /* samples read through it */
    /* thread-samples of threads that had not run since the last sample:
     * their memory was not read again (the BPF reader tells) */
    uint64_t still_thread_samples;
    char bpf_why[192];          /* why not, when not; when it is used, otherwise */
    bool native;                /* --native: what its stops cost the target */
    struct native_pause_stats native_pause;
};

/* GP_OK (also when the target exited midway: m->process_exited) or an
 * exit code with err filled. */
int sampler_run(struct pyrt *rt, struct pyobj_cache *cache, const struct sampler_options *opt,
                struct run_metrics *m, struct sampler_cost *cost, struct gp_error *err);

#endif
