#include "record/loops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"
#include "util/quantiles.h"

/* x86-64 numbers of the syscalls a selector waits in. */
static bool selector_syscall(long nr)
{
    return nr == 232 || nr == 281 || nr == 441 || nr == 23 || nr == 270 || nr == 7 || nr == 271;
}

static bool epoll_wait_syscall(long nr)
{
    return nr == 232 || nr == 281 || nr == 441;
}


/* The next Python frame at or after index i (native ones, from --native,
 * are not the loop's business); e->nframes when none is left. */
static int next_python(const struct stack_entry *e, int i)
{
    while (i < e->nframes && e->frames[i].code->native)
        i++;
    return i;
}

/* 1: no loop; 2: a loop in its selector's select(); 3: a loop elsewhere. */
static uint8_t classify_stack(const struct stack_entry *e)
{
    int top = next_python(e, 0);
    int below_top = top < e->nframes ? next_python(e, top + 1) : e->nframes;
    int run_once = -1;
    for (int i = top; i < e->nframes; i = next_python(e, i + 1)) {
        const struct code_info *c = e->frames[i].code;
        if (strcmp(code_bare_name(c->name), "_run_once") == 0 &&
            code_file_ends_with(c->filename, "asyncio/base_events.py")) {
            run_once = i;
            break;
        }
    }
    if (run_once < 0)
        return 1;
    /* In the selector: _run_once -> <Selector>.select, and no Python above. */
    if (run_once == below_top) {
        const struct code_info *c = e->frames[top].code;
        if (strcmp(code_bare_name(c->name), "select") == 0 && code_file_ends_with(c->filename, "selectors.py"))
            return 2;
    }
    return 3;
}

/* Whether `stack` is `base` with zero or more frames on top of it, by their
 * Python frames. */
static bool extends(const struct stack_table *stacks, uint32_t stack, uint32_t base)
{
    const struct stack_entry *s = stack_table_get(stacks, stack);
    const struct stack_entry *b = stack_table_get(stacks, base);
    if (!s || !b)
        return false;
    /* Outermost first, skipping native frames on both. */
    int i = s->nframes - 1, j = b->nframes - 1;
    for (;;) {
        while (i >= 0 && s->frames[i].code->native)
            i--;
        while (j >= 0 && b->frames[j].code->native)
            j--;
        if (j < 0)
            return true;
        if (i < 0 || s->frames[i].code != b->frames[j].code)
            return false;
        i--;
        j--;
    }
}

static enum loop_sample classify_uvloop(const struct stack_table *stacks, struct loop_track *l,
                                        uint32_t stack, long syscall_nr)
{
    const struct stack_entry *e = stack_table_get(stacks, stack);
    if (!e || !e->nframes)
        return LOOP_NONE;
    int top = stack_python_top(e);
    if (top < 0)
        return LOOP_NONE;
    if (epoll_wait_syscall(syscall_nr) && !code_file_ends_with(e->frames[top].code->filename, "selectors.py") &&
        (!l->uv_base || extends(stacks, l->uv_base, stack))) {
        l->uv_base = stack;
        return LOOP_IDLE;
    }
    return l->uv_base && extends(stacks, stack, l->uv_base) ? LOOP_BUSY : LOOP_NONE;
}

enum loop_sample loops_classify(struct loop_classifier *lc, const struct stack_table *stacks,
                                struct loop_track *l, uint32_t stack, long syscall_nr)
{
    uint8_t *k = stack_kind_slot(&lc->kind, &lc->cap, stack);
    if (!k)
        return LOOP_NONE;
    if (!*k) {
        const struct stack_entry *e = stack_table_get(stacks, stack);
        *k = e && e->nframes ? classify_stack(e) : 1;
    }
    switch (*k) {
    case 2: return selector_syscall(syscall_nr) ? LOOP_IDLE : LOOP_BUSY;
    case 3: return LOOP_BUSY;
    default: return lc->uvloop ? classify_uvloop(stacks, l, stack, syscall_nr) : LOOP_NONE;
    }
}

/* One culprit per (innermost frame, entry): the same slow function run by
 * two handlers is two culprits. */
static struct loop_culprit *culprit_for(struct loop_culprit *v, uint32_t *n, uint32_t frame,
                                        uint32_t entry)
{
    for (uint32_t i = 0; i < *n; i++)
        if (v[i].frame == frame && v[i].entry == entry)
            return &v[i];
    if (*n == LOOP_MAX_CULPRITS)
        return NULL;
    struct loop_culprit *c = &v[(*n)++];
    memset(c, 0, sizeof *c);
    c->frame = frame;
    c->entry = entry;
    c->syscall = -1;
    return c;
}

#define CO_GENERATOR_LIKE (0x20 | 0x80 | 0x100 | 0x200) /* generator, coroutine, iterable coroutine, async generator */

/* asyncio's own frames between the loop's Handle._run and what it runs: a
 * pure-Python Task's wake-up and step methods (a C Task does both in C,
 * no frame). */
static bool loop_machinery(const struct code_info *c)
{
    const char *name = code_bare_name(c->name);
    return (strcmp(name, "_run") == 0 && code_file_ends_with(c->filename, "asyncio/events.py")) ||
           ((strncmp(name, "__step", 6) == 0 || strcmp(name, "__wakeup") == 0) &&
            code_file_ends_with(c->filename, "asyncio/tasks.py"));
}

/* The loop's own work inside _run_once, no callback: polling its selector. */
static bool loop_own(const struct code_info *c)
{
    return code_file_ends_with(c->filename, "selectors.py") ||
           code_file_ends_with(c->filename, "asyncio/base_events.py");
}

/* The entry of a busy sample's stack: the first frame inside the loop's
 * _run_once that is not asyncio's machinery; -1 when none (uvloop runs
 * no Python frame of its own). */
static int entry_index(const struct stack_entry *e, enum loop_context *ctx)
{
    int run_once = -1;
    for (int i = next_python(e, 0); i < e->nframes; i = next_python(e, i + 1)) {
        const struct code_info *c = e->frames[i].code;
        if (strcmp(code_bare_name(c->name), "_run_once") == 0 &&
            code_file_ends_with(c->filename, "asyncio/base_events.py")) {
            run_once = i;
            break;
        }
    }
    *ctx = LOOP_CTX_UNKNOWN;
    for (int i = run_once - 1; i >= 0; i--) {
        const struct code_info *c = e->frames[i].code;
        if (c->native || loop_machinery(c))
            continue;
        if (loop_own(c))
            return -1;
        if (c->flags >= 0)
            *ctx = (c->flags & CO_GENERATOR_LIKE) ? LOOP_CTX_TASK : LOOP_CTX_CALLBACK;
        return i;
    }
    return -1;
}

/* The task a culprit was seen in: the first one named, and whether
 * others were too. */
static void note_task(struct loop_culprit *c, const char *name, bool several)
{
    if (!name || !name[0])
        return;
    if (!c->task[0])
        snprintf(c->task, sizeof c->task, "%s", name);
    else if (strcmp(c->task, name) != 0)
        c->several_tasks = true;
    c->several_tasks |= several;
}

/* Adds one busy stretch's culprits to `dst`; each gets its share of `ms`
 * by its samples. */
static void merge_culprits(struct loop_culprit *dst, uint32_t *ndst,
                           const struct loop_culprit *src, uint32_t nsrc, double ms)
{
    uint32_t total = 0;
    for (uint32_t i = 0; i < nsrc; i++)
        total += src[i].on_cpu_samples + src[i].blocked_samples;
    for (uint32_t i = 0; i < nsrc && total; i++) {
        const struct loop_culprit *rc = &src[i];
        struct loop_culprit *c = culprit_for(dst, ndst, rc->frame, rc->entry);
        if (!c)
            continue;
        if (!c->stack) {
            c->stack = rc->stack;
            c->context = rc->context;
        }
        note_task(c, rc->task, rc->several_tasks);
        c->stalled_ms += ms * (double)(rc->on_cpu_samples + rc->blocked_samples) / total;
        c->on_cpu_samples += rc->on_cpu_samples;
        c->blocked_samples += rc->blocked_samples;
        c->gil_wait_samples += rc->gil_wait_samples;
        c->timeouts_expired += rc->timeouts_expired;
        if (rc->syscall >= 0 && (c->syscall < 0 || rc->syscall_votes > c->syscall_votes)) {
            c->syscall = rc->syscall;
            c->syscall_votes = rc->syscall_votes;
        }
    }
}

/* A busy stretch ended: its culprits count towards the busy time; a stall
 * if long enough, whose samples' culprits share its duration. */
static void end_run(struct loop_track *l, double period_s, double stall_ms)
{
    double ms = (l->run_last - l->run_start + period_s) * 1000.0;
    l->in_run = false;
    if (ms > l->busy_max_ms)
        l->busy_max_ms = ms;
    uint32_t expired = loop_timers_stretch_end(&l->timers, l->run_start, l->run_last + period_s,
                                               ms >= stall_ms);
    /* the timeouts a stall made expire are the doing of what ran most in it */
    uint32_t top = 0;
    for (uint32_t i = 1; i < l->nrun_culprits; i++)
        if (l->run_culprits[i].on_cpu_samples + l->run_culprits[i].blocked_samples >
            l->run_culprits[top].on_cpu_samples + l->run_culprits[top].blocked_samples)
            top = i;
    if (l->nrun_culprits)
        l->run_culprits[top].timeouts_expired = expired;
    if (ms < stall_ms) {
        l->nrun_culprits = 0;
        return;
    }
    size_t ncap = grow_for(&l->stalls, sizeof *l->stalls, l->nstalls, l->capstalls, 16);
    if (ncap)
        l->capstalls = (uint32_t)ncap;
    if (l->nstalls < l->capstalls)
        l->stalls[l->nstalls++] = (struct loop_stall){l->run_start, ms};
    merge_culprits(l->culprits, &l->nculprits, l->run_culprits, l->nrun_culprits, ms);
    l->nrun_culprits = 0;
}

void loops_observe(struct loop_track *l, struct stack_table *stacks, enum loop_sample s,
                   double t, double period_s, double stall_ms, uint32_t stack, bool on_cpu,
                   bool gil_wait, long syscall_nr, const char *task)
{
    if (s == LOOP_NONE)
        return;
    l->seen = true;
    l->samples++;
    if (s == LOOP_IDLE) {
        if (l->in_run)
            end_run(l, period_s, stall_ms);
        return;
    }
    l->busy_samples++;
    if (!l->in_run) {
        l->in_run = true;
        l->run_start = t;
    }
    l->run_last = t;
    const struct stack_entry *e = stack_table_get(stacks, stack);
    if (!e || !e->nframes)
        return;
    /* Everything read from e first: interning may move the table's
     * entries (e then points at freed memory). */
    struct py_frame site[2];
    int nsite = stack_site_frames(e, site);
    /* the task or callback it runs, by function (not line) */
    enum loop_context ctx;
    int at = entry_index(e, &ctx);
    struct py_frame entry_frame = {0};
    if (at >= 0) {
        entry_frame = e->frames[at];
        entry_frame.line = entry_frame.code->firstlineno;
        entry_frame.entry = false;
    }
    e = NULL;
    uint32_t top = stack_table_intern(stacks, site, nsite);
    if (on_cpu) {
        /* Busy time is told by function (its first line), not by line: a
         * hot function's time spreads over the lines of its loop. */
        struct py_frame *py = &site[nsite - 1];
        if (!py->code->native)
            py->line = py->code->firstlineno;
        struct loop_culprit *b = culprit_for(l->busy_culprits, &l->nbusy_culprits,
                                             stack_table_intern(stacks, site, nsite), 0);
        if (b)
            b->on_cpu_samples++;
    }
    uint32_t entry = at >= 0 ? stack_table_intern(stacks, &entry_frame, 1) : 0;
    struct loop_culprit *c = culprit_for(l->run_culprits, &l->nrun_culprits, top, entry);
    if (!c)
        return;
    if (!c->stack) {
        c->stack = stack;
        c->context = ctx;
    }
    if (ctx == LOOP_CTX_TASK)
        note_task(c, task, false);
    if (on_cpu) {
        c->on_cpu_samples++;
    } else {
        c->blocked_samples++;
        c->gil_wait_samples += gil_wait;
        if (syscall_nr >= 0) {
            if (c->syscall == syscall_nr)
                c->syscall_votes++;
            else if (c->syscall_votes == 0) {
                c->syscall = syscall_nr;
                c->syscall_votes = 1;
            } else {
                c->syscall_votes--;
            }
        }
    }
}

static int culprit_by_time(const void *a, const void *b)
{
    double x = ((const struct loop_culprit *)a)->stalled_ms;
    double y = ((const struct loop_culprit *)b)->stalled_ms;
    return (x < y) - (x > y);
}

static int culprit_by_cpu(const void *a, const void *b)
{
    uint32_t x = ((const struct loop_culprit *)a)->on_cpu_samples;
    uint32_t y = ((const struct loop_culprit *)b)->on_cpu_samples;
    return (x < y) - (x > y);
}

/* The derived figures of what was seen so far (finished stalls only). */
void loops_derive(struct loop_track *l, double duration_s)
{
    l->busy_pct = l->samples ? 100.0 * (double)l->busy_samples / (double)l->samples : 0;
    double total = 0, squares = 0;
    double *d = malloc((l->nstalls ? l->nstalls : 1) * sizeof *d);
    for (uint32_t i = 0; i < l->nstalls; i++) {
        total += l->stalls[i].ms;
        squares += l->stalls[i].ms * l->stalls[i].ms;
        if (d)
            d[i] = l->stalls[i].ms;
    }
    l->stalled_pct = duration_s > 0 ? 100.0 * total / (duration_s * 1000.0) : 0;
    /* A timer due at a random moment lands in a stall of length d with
     * probability d/T and is then late by d/2 on average. */
    l->timer_lag_mean_ms = duration_s > 0 ? squares / 2.0 / (duration_s * 1000.0) : 0;
    if (d && l->nstalls) {
        struct quantiles q = quantiles_of(d, l->nstalls);
        l->stall_p50_ms = q.p50;
        l->stall_p99_ms = q.p99;
        l->stall_max_ms = l->timer_lag_max_ms = q.max;
    }
    free(d);
    /* what its timers measured, when they were seen run */
    loop_timers_derive(&l->timers);
    loop_tasks_derive(&l->tasks);
    l->timer_lag_measured = l->timers.ran > 0;
    if (l->timer_lag_measured) {
        l->timer_lag_mean_ms = l->timers.lag_mean_ms;
        l->timer_lag_max_ms = l->timers.lag_max_ms;
        l->timer_lag_p50_ms = l->timers.lag_p50_ms;
        l->timer_lag_p99_ms = l->timers.lag_p99_ms;
    } else {
        l->timer_lag_p50_ms = l->timer_lag_p99_ms = 0;
    }
    qsort(l->culprits, l->nculprits, sizeof l->culprits[0], culprit_by_time);
    for (uint32_t i = 0; i < l->nculprits; i++)
        l->culprits[i].share_pct = total > 0 ? 100.0 * l->culprits[i].stalled_ms / total : 0;
    qsort(l->busy_culprits, l->nbusy_culprits, sizeof l->busy_culprits[0], culprit_by_cpu);
    for (uint32_t i = 0; i < l->nbusy_culprits; i++)
        l->busy_culprits[i].share_pct =
            l->busy_samples ? 100.0 * l->busy_culprits[i].on_cpu_samples / (double)l->busy_samples
                            : 0;
}

void loops_timers(struct loop_track *l, double t, const struct asyncio_timer *v, uint32_t n,
                  uint64_t total, double clock)
{
    loop_timers_scan(&l->timers, t, v, n, total, clock, l->in_run, l->run_start);
}

void loops_finish(struct loop_track *l, double t_end, double period_s, double stall_ms,
                  double duration_s)
{
    (void)t_end;
    if (l->in_run)
        end_run(l, period_s, stall_ms);
    loops_derive(l, duration_s);
}

void loops_window_reset(struct loop_track *l)
{
    l->samples = l->busy_samples = 0;
    l->nstalls = 0;
    l->nculprits = 0;
    l->nbusy_culprits = 0;
    l->busy_max_ms = 0;
    l->nexact = 0;
    l->busy_pct = l->stalled_pct = l->stall_p50_ms = l->stall_p99_ms = l->stall_max_ms = 0;
    l->timer_lag_mean_ms = l->timer_lag_max_ms = l->timer_lag_p50_ms = l->timer_lag_p99_ms = 0;
    l->timer_lag_measured = false;
    loop_timers_window_reset(&l->timers);
    loop_tasks_window_reset(&l->tasks);
}

void loops_free(struct loop_track *l)
{
    free(l->stalls);
    free(l->exact_ms);
    loop_timers_free(&l->timers);
    memset(l, 0, sizeof *l);
}

int loops_context_frames(const struct stack_table *stacks, const struct loop_culprit *c,
                         struct py_frame *out, int max)
{
    const struct stack_entry *e = stack_table_get(stacks, c->stack);
    enum loop_context ctx;
    int at = e && c->context != LOOP_CTX_UNKNOWN ? entry_index(e, &ctx) : -1;
    if (at < 0 || max <= 0)
        return 0;
    out[0] = e->frames[at];
    if (c->context != LOOP_CTX_TASK)
        return 1;
    /* the task's coroutines, outermost first: the chain of awaits that
     * reached the culprit (plain functions they call are not in it) */
    int n = 1;
    for (int i = at - 1; i >= 0 && n < max; i--) {
        const struct code_info *k = e->frames[i].code;
        if (!k->native && k->flags > 0 && (k->flags & CO_GENERATOR_LIKE))
            out[n++] = e->frames[i];
    }
    return n;
}

#define CONTEXT_FRAMES 8

void loops_context_text(const struct stack_table *stacks, const struct loop_culprit *c, char *buf,
                        size_t sz)
{
    struct py_frame f[CONTEXT_FRAMES];
    int n = loops_context_frames(stacks, c, f, CONTEXT_FRAMES);
    if (!sz)
        return;
    buf[0] = 0;
    if (!n)
        return;
    size_t used;
    if (c->context != LOOP_CTX_TASK)
        used = (size_t)snprintf(buf, sz, "in callback ");
    else if (c->task[0])
        used = (size_t)snprintf(buf, sz, "in task \"%s\"%s: ", c->task,
                                c->several_tasks ? " (and others)" : "");
    else
        used = (size_t)snprintf(buf, sz, "in task ");
    for (int i = 0; i < n && used < sz; i++) {
        if (i)
            used += (size_t)snprintf(buf + used, sz - used, " -> ");
        if (used < sz) {
            stack_frame_text(&f[i], buf + used, sz - used);
            used += strlen(buf + used);
        }
    }
}
