/* What a run recorded, independent of how (the sampler, the eBPF timings):
 * accumulators fed one observation at a time. The figures derived from them
 * (analysis/figures.h) fill the "derived" fields; the report computes
 * nothing itself. */
#ifndef GILPROBE_METRICS_H
#define GILPROBE_METRICS_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "python/thread_names.h"
#include "record/blame.h"
#include "record/loops.h"
#include "record/stacks.h"
#include "target/system.h"
#include "util/addrmap.h"

enum tstate_kind {
    TS_GIL_HELD,
    TS_GIL_WAIT,
    TS_LOCK_WAIT,
    TS_IDLE_WAIT, /* blocked waiting for work or a notification (idle_wait.h) */
    TS_IO_WAIT,
    TS_SLEEP,
    TS_NOGIL_RUNNING, /* on a CPU (or runnable) without the GIL: native code */
    TS_OTHER,
    TS_COUNT
};

const char *tstate_kind_key(enum tstate_kind k);   /* "gil_wait" ... */
const char *tstate_kind_label(enum tstate_kind k); /* "waiting for the GIL" ... */

/* What a thread is to the others' GIL waits (analysis/figures.c): a
 * latency-sensitive thread whose GIL waits are long beside its short bursts
 * of work (a victim), or one whose holds caused most of the victims' waits
 * (an aggressor). */
enum thread_role { ROLE_NONE, ROLE_VICTIM, ROLE_AGGRESSOR };

struct dist_ms {
    uint64_t count;
    double p50, p99, max;
};

#define LOCK_MAX_WAITERS 64

struct thread_metrics {
    pid_t tid;
    char name[32];                     /* the OS (kernel) name */
    char python_name[THREAD_NAME_MAX]; /* threading.Thread.name, "" when none */
    const char *python_name_why;       /* why none (static text), NULL when there is */
    uint64_t tstate;
    bool exited;
    uint64_t samples;
    uint64_t state[TS_COUNT];
    struct stack_counts stacks[TS_COUNT];
    uint32_t wait_run;             /* current run of GIL-wait samples */
    uint32_t *wait_runs;           /* finished runs, in samples */
    size_t nwait_runs, capwait_runs;
    uint64_t cpu_first, cpu_last;  /* CPU time used, ns */
    uint64_t ivcs_first, ivcs_last; /* involuntary context switches */
    double t_first, t_last;        /* when those were read */
    bool cpu_valid;
    struct loop_track loop;       /* when it runs an asyncio event loop */
    /* A pool worker's queue of waiting work (python/work_queue.h): read at
     * each thread-list refresh. */
    uint64_t work_queue;          /* 0: none known */
    uint64_t queue_reads;
    double queue_depth_sum;
    int64_t queue_depth_max;
    /* Whom its GIL waits were spent behind, from the samples (blame.h). */
    struct blame_list blame_sampled;
    /* derived by metrics_finish */
    char display[THREAD_NAME_MAX + 40]; /* thread_display_name: what text reports show */
    double pct[TS_COUNT];
    double cpu_pct, ivcs_per_s;
    struct dist_ms wait;
    /* GIL blame: the exact list when eBPF measured one, else the sampled */
    const struct blame_list *blame;
    bool blame_exact;
    double caused_ms;         /* GIL wait its holds caused the others */
    double wait_ms;           /* its own GIL wait (the blame list's total) */
    bool latency_sensitive;   /* mostly blocked (I/O, timer, queue, selector), short bursts */
    double burst_ms;          /* mean stretch of work (GIL held or waited for) */
    double wait_p99_ms;       /* exact per-wait p99 when measured, else sampled stretches */
    double wakeups_per_s;     /* its GIL waits a second: exact, else sampled wait stretches */
    enum thread_role role;
};

/* Exact GIL figures (eBPF): distributions of hold and wait times. */
struct exact_dist {
    uint64_t count;
    double total_ms, mean_ms, p50_ms, p90_ms, p99_ms, max_ms;
};

struct exact_thread {
    pid_t tid;
    uint64_t acquisitions;
    struct exact_dist hold, wait;
    double held_pct, wait_pct; /* of the measured window */
    struct blame_list blame;   /* exact GIL blame (bpf/gil_common.bpf.h) */
    uint64_t waits_long;       /* waits of at least half the switch interval */
    uint64_t wakeups;          /* times it came back for the GIL (gil_shared.h) */
};

#define EXACT_LONGEST 5

struct exact_long_hold {
    pid_t tid;
    double ms;
    uint32_t stack; /* Python stack when the hold ended */
};

/* Coarse bounds (seconds) for exporting exact hold and wait times as
 * histograms (gilprobe serve): the kernel's 6%-wide buckets, each counted
 * under the first bound at or above its middle. */
#define EXACT_LE_BOUNDS 16
extern const double exact_le_bounds_s[EXACT_LE_BOUNDS];

struct exact_gil {
    bool valid;
    char mode[224];        /* how it was measured */
    int probes;           /* probes attached */
    double window_s;
    double held_pct;
    uint64_t acquisitions;
    struct exact_dist hold, wait;
    /* the same as counts per exact_le_bounds_s bucket (the last: above) */
    uint64_t hold_le[EXACT_LE_BOUNDS + 1], wait_le[EXACT_LE_BOUNDS + 1];
    struct exact_thread *threads;
    uint32_t nthreads;
    struct exact_long_hold longest[EXACT_LONGEST];
    uint32_t nlongest;
    uint64_t long_hold_events;
    double long_hold_threshold_ms;
    /* The exact blame's cost: holds recorded for it a second, and pairs
     * it could not count (the kernel's pair map full). */
    bool blame_valid;
    double blame_holds_per_s;
    uint64_t blame_lost;
    /* Checked against the sampled figures (metrics_finish): a figure
     * called exact must agree with the samples within their error. */
    struct exact_check {
        bool done, consistent;
        double sampled_held_pct, held_diff, held_tolerance;
        uint32_t threads_compared;
        pid_t worst_tid;         /* largest per-thread wait difference */
        double worst_exact_wait_pct, worst_sampled_wait_pct, worst_wait_diff, worst_tolerance;
        double sampler_missed_pct; /* ticks the sampler could not take */
    } check;
};

struct activity {
    uint32_t thread; /* index into threads */
    enum tstate_kind kind;
    uint32_t stack;
    uint64_t count;
    /* derived: share of the recorded wait samples, the thread's share of
     * the same (state, stack) over the whole run, and the difference: what
     * the thread does *because* (or while) the lock is waited on */
    double share_pct, baseline_pct, excess_pct;
};

struct lock_metrics {
    uint64_t addr;
    uint64_t wait_samples;
    uint32_t waiters[LOCK_MAX_WAITERS]; /* thread indices */
    uint32_t nwaiters;
    uint64_t samples_with_waiters;
    uint64_t activity_samples;          /* samples whose "meanwhile" was recorded */
    uint64_t last_sample;               /* sample number it was last seen waited on */
    struct stack_counts sites;          /* where waiters wait */
    struct activity *act;               /* what the others did meanwhile */
    uint32_t nact, capact;
    struct addrmap act_index;           /* (thread, kind, stack) -> act index + 1 */
    /* derived */
    double wait_pct;
    uint32_t *act_order; /* by excess_pct, descending */
};

struct thread_obs {
    uint32_t thread; /* index into run_metrics.threads */
    enum tstate_kind kind;
    uint64_t lock_addr;
    uint32_t stack;
    long syscall_nr; /* blocking syscall, or < 0 when running / unknown */
    const char *task; /* an event loop's running asyncio task's name (NULL: none or not read) */
    /* its loop's timers when this sample read them (NULL: not read) */
    const struct asyncio_timer *timers;
    uint32_t ntimers;
    uint64_t timers_total; /* the heap's length (ntimers: its first) */
    double timers_clock;   /* CLOCK_MONOTONIC of the run's start */
    int64_t tasks;         /* asyncio tasks alive when counted this sample (-1: not counted) */
    bool tasks_per_thread; /* ... the thread's (3.14+), else the process's */
};

struct sample_obs {
    double time; /* seconds since the run started */
    bool gil_valid;
    int locked;
    uint64_t switch_number;
    const struct thread_obs *t;
    size_t n;
};

struct run_metrics {
    double duration_s;
    double started_monotonic_s; /* CLOCK_MONOTONIC when the sampled span began */
    bool process_exited, interrupted;
    bool process_execd; /* (with process_exited) it replaced its program: exec */
    double requested_rate_hz;
    uint64_t samples_requested, samples_taken, missed;
    uint64_t gil_unread; /* samples whose GIL state could not be read */
    uint64_t gil_samples, held, contended, waiters_sum;
    bool free_threaded;            /* a free-threaded build: the GIL is normally off */
    uint64_t gil_disabled_samples; /* samples that found the GIL off */
    uint32_t waiters_max;
    uint64_t switch_first, switch_last;
    bool switch_seen;
    uint64_t interval_us;
    bool no_asyncio;           /* --no-asyncio: asyncio's objects were not read */
    bool handoffs_unmeasured;  /* no GIL switch number or interval in the
                                * layout (a version read through its
                                * _Py_DebugOffsets): hand-offs not measured */
    char process_name[32]; /* its main thread's OS name, which threads inherit */
    uint32_t py_min, py_max, py_created, py_exited;
    uint32_t os_min, os_max, os_created, os_exited;
    struct thread_metrics *threads;
    uint32_t nthreads, capthreads;
    struct lock_metrics *locks;
    uint32_t nlocks, caplocks;
    struct addrmap lock_index; /* futex address -> lock index + 1 */
    uint32_t *waited;          /* scratch: locks waited on in this sample */
    uint32_t capwaited;
    struct stack_table stacks;
    struct exact_gil exact;    /* filled by the eBPF backend when it ran */
    struct loop_classifier loop_cls;
    double sample_period_s;    /* requested sample period */
    double stall_ms;           /* loop stall threshold */
    char bpf_note[192];        /* why it did not, when it did not */
    char loop_bpf_note[192];   /* the same for exact event-loop stalls */
    struct system_view system; /* process tree, CPUs, memory */
    /* derived */
    double rate_hz, period_ms;
    bool behind;
    double held_pct, contended_pct, waiters_mean;
    double gil_disabled_pct;    /* of samples taken */
    uint64_t handoffs;
    double handoffs_per_s, mean_hold_ms;
    double cpu_s;              /* CPU time its threads used in the run */
    double handoffs_per_cpu_s; /* hand-offs per second of that; 0: too little to tell */
    uint32_t *thread_order; /* by GIL wait, descending */
    uint32_t *lock_order;   /* by wait samples, descending */
};

void metrics_init(struct run_metrics *m);
void metrics_free(struct run_metrics *m);
/* Frees the exact per-thread figures (m->exact.threads) and empties them. */
void metrics_exact_threads_free(struct exact_gil *x);
/* Index of a new thread record (returns UINT32_MAX on OOM). */
uint32_t metrics_add_thread(struct run_metrics *m, pid_t tid, const char *name, uint64_t tstate);
void metrics_observe(struct run_metrics *m, const struct sample_obs *s);
void metrics_thread_counts(struct run_metrics *m, uint32_t python, uint32_t os);
/* Ends a thread's GIL-wait run in progress (the run's end, or a window's). */
void metrics_end_wait_run(struct thread_metrics *t);
/* Windowed runs (gilprobe top), after analysis/figures.h's
 * metrics_window_finish: clears every per-window count and figure for the
 * next window, keeping the thread table, the stacks and the runs in
 * progress (GIL waits, event-loop busy stretches). */
void metrics_window_reset(struct run_metrics *m);
/* Long-running windowed runs (gilprobe watch), right after a window reset:
 * drops the records of threads that exited, so thread churn cannot grow
 * the table for as long as the run lasts. remap (m->nthreads entries on
 * entry) receives each old index's new one, UINT32_MAX for dropped ones.
 * Returns how many were dropped. */
uint32_t metrics_prune_exited(struct run_metrics *m, uint32_t *remap);
/* Recording what every other thread does while a lock is waited on costs
 * locks x threads per sample; above this many updates a sample, only every
 * k-th sample records it (shares use the recorded samples only). */
#define METRICS_ACTIVITY_BUDGET 256
/* Less CPU than this (5 clock ticks) makes a per-CPU-second rate noise. */
#define METRICS_MIN_CPU_S 0.05
/* Behind schedule: fewer than this share of requested samples taken. */
#define METRICS_BEHIND_RATIO 0.9

#endif
