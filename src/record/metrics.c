#include "record/metrics.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/grow.h"

static const char *const KEYS[TS_COUNT] = {"gil_held", "gil_wait", "lock_wait",     "idle_wait",
                                           "io_wait",  "sleep",    "nogil_running", "other"};
static const char *const LABELS[TS_COUNT] = {
    "holding the GIL", "waiting for the GIL", "waiting on a lock",
    "waiting for work or a notification", "in I/O wait", "sleeping",
    "running without the GIL", "other"};

const double exact_le_bounds_s[EXACT_LE_BOUNDS] = {
    0.00001, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

const char *tstate_kind_key(enum tstate_kind k)
{
    return k < TS_COUNT ? KEYS[k] : "?";
}

const char *tstate_kind_label(enum tstate_kind k)
{
    return k < TS_COUNT ? LABELS[k] : "?";
}

void metrics_init(struct run_metrics *m)
{
    memset(m, 0, sizeof *m);
    stack_table_init(&m->stacks);
    m->py_min = m->os_min = UINT32_MAX;
    m->stall_ms = LOOPS_DEFAULT_STALL_MS;
}

static void free_lock(struct lock_metrics *l)
{
    stack_counts_free(&l->sites);
    free(l->act);
    addrmap_free(&l->act_index);
    free(l->act_order);
}

static void free_thread(struct thread_metrics *t);

void metrics_free(struct run_metrics *m)
{
    for (uint32_t i = 0; i < m->nthreads; i++)
        free_thread(&m->threads[i]);
    free(m->loop_cls.kind);
    for (uint32_t i = 0; i < m->nlocks; i++)
        free_lock(&m->locks[i]);
    free(m->waited);
    addrmap_free(&m->lock_index);
    free(m->threads);
    free(m->locks);
    metrics_exact_threads_free(&m->exact);
    free(m->thread_order);
    free(m->lock_order);
    stack_table_free(&m->stacks);
    memset(m, 0, sizeof *m);
}

void metrics_exact_threads_free(struct exact_gil *x)
{
    for (uint32_t i = 0; i < x->nthreads; i++)
        blame_free(&x->threads[i].blame);
    free(x->threads);
    x->threads = NULL;
    x->nthreads = 0;
}

uint32_t metrics_add_thread(struct run_metrics *m, pid_t tid, const char *name, uint64_t tstate)
{
    size_t ncap = grow_for(&m->threads, sizeof *m->threads, m->nthreads, m->capthreads, 16);
    if (!ncap)
        return UINT32_MAX;
    m->capthreads = (uint32_t)ncap;
    struct thread_metrics *t = &m->threads[m->nthreads];
    memset(t, 0, sizeof *t);
    t->tid = tid;
    t->tstate = tstate;
    snprintf(t->name, sizeof t->name, "%s", name);
    return m->nthreads++;
}

void metrics_end_wait_run(struct thread_metrics *t)
{
    if (!t->wait_run)
        return;
    size_t ncap = grow_for(&t->wait_runs, sizeof *t->wait_runs, t->nwait_runs, t->capwait_runs, 64);
    if (!ncap) {
        t->wait_run = 0;
        return;
    }
    t->capwait_runs = ncap;
    t->wait_runs[t->nwait_runs++] = t->wait_run;
    t->wait_run = 0;
}

static struct lock_metrics *lock_for(struct run_metrics *m, uint64_t addr)
{
    uintptr_t k = (uintptr_t)addrmap_get(&m->lock_index, addr);
    if (k)
        return &m->locks[k - 1];
    size_t ncap = grow_for(&m->locks, sizeof *m->locks, m->nlocks, m->caplocks, 8);
    if (!ncap)
        return NULL;
    m->caplocks = (uint32_t)ncap;
    if (!addrmap_put(&m->lock_index, addr, (void *)(uintptr_t)(m->nlocks + 1)))
        return NULL;
    struct lock_metrics *l = &m->locks[m->nlocks++];
    memset(l, 0, sizeof *l);
    l->addr = addr;
    addrmap_init(&l->act_index);
    return l;
}

static void add_waiter(struct lock_metrics *l, uint32_t thread)
{
    for (uint32_t i = 0; i < l->nwaiters; i++)
        if (l->waiters[i] == thread)
            return;
    if (l->nwaiters < LOCK_MAX_WAITERS)
        l->waiters[l->nwaiters++] = thread;
}

static void add_activity(struct lock_metrics *l, const struct thread_obs *o)
{
    /* thread < 2^24, kind < 2^8, stack < 2^32: one key; +1 keeps it non-zero */
    uint64_t key = ((uint64_t)o->thread << 40 | (uint64_t)o->kind << 32 | o->stack) + 1;
    uintptr_t k = (uintptr_t)addrmap_get(&l->act_index, key);
    if (k) {
        l->act[k - 1].count++;
        return;
    }
    size_t ncap = grow_for(&l->act, sizeof *l->act, l->nact, l->capact, 8);
    if (!ncap)
        return;
    l->capact = (uint32_t)ncap;
    if (!addrmap_put(&l->act_index, key, (void *)(uintptr_t)(l->nact + 1)))
        return;
    l->act[l->nact++] = (struct activity){.thread = o->thread, .kind = o->kind, .stack = o->stack, .count = 1};
}

/* Lock waits of one sample: who waits where, and what everyone else does
 * meanwhile (the holder is usually among them). */
static void observe_locks(struct run_metrics *m, const struct sample_obs *s)
{
    uint64_t sample_no = m->samples_taken;
    uint32_t nwaited = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct thread_obs *o = &s->t[i];
        if (o->kind != TS_LOCK_WAIT)
            continue;
        struct lock_metrics *l = lock_for(m, o->lock_addr);
        if (!l)
            continue;
        l->wait_samples++;
        add_waiter(l, o->thread);
        stack_counts_add(&l->sites, o->stack, 1);
        if (l->last_sample != sample_no) {
            l->last_sample = sample_no;
            l->samples_with_waiters++;
            size_t ncap = grow_for(&m->waited, sizeof *m->waited, nwaited, m->capwaited, 16);
            if (!ncap)
                continue;
            m->capwaited = (uint32_t)ncap;
            m->waited[nwaited++] = (uint32_t)(l - m->locks);
        }
    }
    if (!nwaited)
        return;
    uint64_t work = (uint64_t)nwaited * s->n;
    uint64_t every = (work + METRICS_ACTIVITY_BUDGET - 1) / METRICS_ACTIVITY_BUDGET;
    if (every > 1 && sample_no % every)
        return;
    for (uint32_t w = 0; w < nwaited; w++) {
        struct lock_metrics *l = &m->locks[m->waited[w]];
        l->activity_samples++;
        for (size_t j = 0; j < s->n; j++)
            if (!(s->t[j].kind == TS_LOCK_WAIT && s->t[j].lock_addr == l->addr))
                add_activity(l, &s->t[j]);
    }
}

/* The innermost Python function of a stack (NULL: none). */
static struct code_info *top_function(const struct stack_table *st, uint32_t stack)
{
    const struct stack_entry *e = stack_table_get(st, stack);
    int py = stack_python_top(e);
    return py >= 0 ? e->frames[py].code : NULL;
}

/* Each GIL waiter of a sample is charged to the sample's holder and the
 * function it ran (holder 0 when no thread held it: a hand-off). */
static void observe_blame(struct run_metrics *m, const struct sample_obs *s, uint32_t waiters)
{
    if (!waiters)
        return;
    const struct thread_obs *holder = NULL;
    for (size_t i = 0; i < s->n && s->gil_valid && s->locked == 1; i++)
        if (s->t[i].kind == TS_GIL_HELD)
            holder = &s->t[i];
    pid_t htid = holder ? m->threads[holder->thread].tid : 0;
    struct code_info *code = holder ? top_function(&m->stacks, holder->stack) : NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->t[i].kind == TS_GIL_WAIT)
            blame_add(&m->threads[s->t[i].thread].blame_sampled, htid, code ? code->addr : 0,
                      code, 1, 0);
}

void metrics_observe(struct run_metrics *m, const struct sample_obs *s)
{
    m->samples_taken++;
    m->gil_unread += !s->gil_valid;
    uint32_t waiters = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct thread_obs *o = &s->t[i];
        struct thread_metrics *t = &m->threads[o->thread];
        t->samples++;
        t->state[o->kind]++;
        stack_counts_add(&t->stacks[o->kind], o->stack, 1);
        enum loop_sample ls =
            loops_classify(&m->loop_cls, &m->stacks, &t->loop, o->stack, o->syscall_nr);
        bool on_cpu = o->kind == TS_GIL_HELD || o->kind == TS_NOGIL_RUNNING;
        loops_observe(&t->loop, &m->stacks, ls, s->time, m->sample_period_s, m->stall_ms, o->stack,
                      on_cpu, o->kind == TS_GIL_WAIT, o->syscall_nr, o->task);
        if (o->tasks >= 0 && ls != LOOP_NONE)
            loop_tasks_add(&t->loop.tasks, s->time, (uint32_t)o->tasks, o->tasks_per_thread);
        if (o->timers && ls != LOOP_NONE)
            loops_timers(&t->loop, s->time, o->timers, o->ntimers, o->timers_total, o->timers_clock);
        if (o->kind == TS_GIL_WAIT) {
            t->wait_run++;
            waiters++;
        } else {
            metrics_end_wait_run(t);
        }
    }
    if (s->gil_valid) {
        m->gil_samples++;
        m->held += s->locked == 1;
        m->contended += waiters > 0;
        m->waiters_sum += waiters;
        if (waiters > m->waiters_max)
            m->waiters_max = waiters;
        if (!m->switch_seen)
            m->switch_first = s->switch_number;
        m->switch_last = s->switch_number;
        m->switch_seen = true;
    }
    observe_blame(m, s, waiters);
    observe_locks(m, s);
}

void metrics_thread_counts(struct run_metrics *m, uint32_t python, uint32_t os)
{
    if (python < m->py_min)
        m->py_min = python;
    if (python > m->py_max)
        m->py_max = python;
    if (os < m->os_min)
        m->os_min = os;
    if (os > m->os_max)
        m->os_max = os;
}

void metrics_window_reset(struct run_metrics *m)
{
    m->samples_requested = m->samples_taken = m->missed = m->gil_unread = 0;
    m->gil_samples = m->held = m->contended = m->waiters_sum = 0;
    m->gil_disabled_samples = 0;
    m->waiters_max = 0;
    m->switch_first = m->switch_last; /* hand-offs count from the last one seen */
    m->py_min = m->os_min = UINT32_MAX;
    m->py_max = m->os_max = 0;
    m->py_created = m->py_exited = m->os_created = m->os_exited = 0;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        struct thread_metrics *t = &m->threads[i];
        t->samples = 0;
        memset(t->state, 0, sizeof t->state);
        for (int k = 0; k < TS_COUNT; k++)
            t->stacks[k].n = 0;
        t->nwait_runs = 0;
        t->cpu_first = t->cpu_last;
        t->ivcs_first = t->ivcs_last;
        t->t_first = t->t_last;
        loops_window_reset(&t->loop);
        memset(t->pct, 0, sizeof t->pct);
        t->cpu_pct = t->ivcs_per_s = 0;
        memset(&t->wait, 0, sizeof t->wait);
        blame_clear(&t->blame_sampled);
        t->blame = NULL;
        t->caused_ms = t->wait_ms = 0;
    }
    for (uint32_t i = 0; i < m->nlocks; i++)
        free_lock(&m->locks[i]);
    m->nlocks = 0;
    addrmap_clear(&m->lock_index);
    free(m->thread_order);
    free(m->lock_order);
    m->thread_order = m->lock_order = NULL;
    m->rate_hz = m->period_ms = 0;
    m->behind = false;
    m->held_pct = m->contended_pct = m->waiters_mean = 0;
    m->handoffs = 0;
    m->handoffs_per_s = m->mean_hold_ms = 0;
    m->cpu_s = m->handoffs_per_cpu_s = 0;
}

static void free_thread(struct thread_metrics *t)
{
    for (int k = 0; k < TS_COUNT; k++)
        stack_counts_free(&t->stacks[k]);
    free(t->wait_runs);
    loops_free(&t->loop);
    blame_free(&t->blame_sampled);
}

uint32_t metrics_prune_exited(struct run_metrics *m, uint32_t *remap)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        if (m->threads[i].exited) {
            free_thread(&m->threads[i]);
            remap[i] = UINT32_MAX;
            continue;
        }
        remap[i] = kept;
        if (kept != i)
            m->threads[kept] = m->threads[i];
        kept++;
    }
    uint32_t dropped = m->nthreads - kept;
    m->nthreads = kept;
    return dropped;
}
