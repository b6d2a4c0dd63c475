/* asyncio event loops, from the sampled stacks: which threads run a loop,
 * when each is in its selector wait (idle) or out of it (busy), stalls
 * (busy stretches longer than a threshold), their culprits and the lateness
 * a timer on the loop would suffer. Backend-agnostic, fed by metrics. */
#ifndef GILPROBE_LOOPS_H
#define GILPROBE_LOOPS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/loop_tasks.h"
#include "record/loop_timers.h"
#include "record/stacks.h"

#define LOOPS_DEFAULT_STALL_MS 100.0
#define LOOP_MAX_CULPRITS 16

enum loop_sample {
    LOOP_NONE = 0,  /* not running an event loop in this sample */
    LOOP_IDLE,      /* blocked in the selector (epoll_wait/select/poll) */
    LOOP_BUSY,      /* anywhere else: callbacks, coroutine steps, GIL waits */
};

/* What the loop was running when a culprit was sampled: the entry frame
 * just inside the loop's Handle._run is a task's coroutine (a task step)
 * or a plain function (a call_soon / call_later callback). */
enum loop_context { LOOP_CTX_UNKNOWN = 0, LOOP_CTX_TASK, LOOP_CTX_CALLBACK };

struct loop_culprit {
    uint32_t frame;    /* interned one-frame stack: the innermost frame */
    uint32_t entry;    /* interned one-frame stack: the task's coroutine or the callback (0: unknown) */
    uint32_t stack;    /* a full stack it was seen in: the coroutine chain from entry to frame */
    enum loop_context context;
    char task[64];     /* the name of the task it ran in ("": not known) */
    bool several_tasks; /* ... and other tasks' too */
    double stalled_ms;
    uint32_t on_cpu_samples, blocked_samples;
    uint32_t gil_wait_samples; /* of the blocked ones: waiting for the GIL */
    uint32_t timeouts_expired; /* timeouts its stalls made expire */
    long syscall;      /* most frequent blocking syscall (-1 none) */
    uint32_t syscall_votes;
    /* derived */
    double share_pct;
};

struct loop_stall {
    double start_s, ms;
};

struct loop_track {
    bool seen;
    uint32_t uv_base; /* uvloop: the stack seen idle in epoll_wait (0: none) */
    uint64_t samples, busy_samples;
    /* the busy stretch in progress */
    bool in_run;
    double run_start, run_last;
    struct loop_culprit run_culprits[LOOP_MAX_CULPRITS];
    uint32_t nrun_culprits;
    /* finished stalls */
    struct loop_stall *stalls;
    uint32_t nstalls, capstalls;
    struct loop_culprit culprits[LOOP_MAX_CULPRITS];
    uint32_t nculprits;
    /* every busy stretch, stall or not: where the loop's busy time goes
     * (a loop can be saturated by work that never stalls it for long) */
    struct loop_culprit busy_culprits[LOOP_MAX_CULPRITS];
    uint32_t nbusy_culprits;
    double busy_max_ms; /* the longest busy stretch */
    /* its timers, when their heap could be read */
    struct loop_timers timers;
    /* its tasks over time */
    struct loop_tasks tasks;
    /* exact stall durations from eBPF, when it ran */
    bool exact;
    double *exact_ms;
    uint32_t nexact;
    double exact_p50_ms, exact_p99_ms, exact_max_ms;
    /* derived */
    double busy_pct, stalled_pct, stall_p50_ms, stall_p99_ms, stall_max_ms;
    /* how late a timer ran: measured from its timers when they were read
     * (timer_lag_measured), else what a timer due at a random moment
     * would suffer from the stalls */
    bool timer_lag_measured;
    double timer_lag_mean_ms, timer_lag_max_ms, timer_lag_p50_ms, timer_lag_p99_ms;
    /* busy_culprits sorted by on-CPU samples; share_pct: of the busy samples */
};

struct loop_classifier {
    uint8_t *kind; /* per stack id: 0 unknown, 1 no loop, 2 in select(), 3 other loop frame */
    uint32_t cap;
    /* uvloop is loaded: its loop runs no Python frame of its own, so a
     * thread idle in epoll_wait under plain Python frames is taken for its
     * loop, and the same frames with more on top for the loop at work. */
    bool uvloop;
};

/* What one thread's sample says about its loop (l: that thread's track). */
enum loop_sample loops_classify(struct loop_classifier *lc, const struct stack_table *stacks,
                                struct loop_track *l, uint32_t stack, long syscall_nr);
/* Feeds one sample of a loop thread (t: seconds since the start). */
void loops_observe(struct loop_track *l, struct stack_table *stacks, enum loop_sample s,
                   double t, double period_s, double stall_ms, uint32_t stack, bool on_cpu,
                   bool gil_wait, long syscall_nr, const char *task);
/* A read of the loop's timer heap at t (see record/loop_timers.h). */
void loops_timers(struct loop_track *l, double t, const struct asyncio_timer *v, uint32_t n,
                  uint64_t total, double clock);
void loops_finish(struct loop_track *l, double t_end, double period_s, double stall_ms,
                  double duration_s);
/* Windowed runs: the derived figures of the stalls finished so far, the
 * busy stretch in progress left running; then a fresh window that keeps
 * that stretch (a stall is counted in the window it ends in). */
void loops_derive(struct loop_track *l, double duration_s);
void loops_window_reset(struct loop_track *l);
/* What a culprit ran in, as text: 'in task "req-7": handle (app.py:30) ->
 * compute (app.py:20)' (the task's name when known, its coroutine chain,
 * outermost first, down to the culprit's frame) or "in callback tick
 * (app.py:40)"; "" when unknown. */
void loops_context_text(const struct stack_table *stacks, const struct loop_culprit *c, char *buf,
                        size_t sz);
/* The same as frames, outermost first (the callback alone); how many (at
 * most max) were written to out. */
int loops_context_frames(const struct stack_table *stacks, const struct loop_culprit *c,
                         struct py_frame *out, int max);
void loops_free(struct loop_track *l);

#endif
