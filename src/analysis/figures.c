/* The figures a report prints, derived from what a run recorded
 * (record/metrics.h): shares, rates, orders, quantiles, and the exact GIL
 * figures checked against the sampled ones. Computes; reads nothing. */
#include "analysis/figures.h"

#include <stdlib.h>
#include <unistd.h>

#include "analysis/blame_roles.h"
#include "analysis/exact_check.h"
#include "util/quantiles.h"

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* Orders of index arrays: qsort_r passes what the indices point into. */
static int thread_by_wait(const void *a, const void *b, void *ctx)
{
    const struct run_metrics *m = ctx;
    const struct thread_metrics *x = &m->threads[*(const uint32_t *)a];
    const struct thread_metrics *y = &m->threads[*(const uint32_t *)b];
    if (x->pct[TS_GIL_WAIT] != y->pct[TS_GIL_WAIT])
        return x->pct[TS_GIL_WAIT] < y->pct[TS_GIL_WAIT] ? 1 : -1;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

static int lock_by_wait(const void *a, const void *b, void *ctx)
{
    const struct run_metrics *m = ctx;
    uint64_t x = m->locks[*(const uint32_t *)a].wait_samples;
    uint64_t y = m->locks[*(const uint32_t *)b].wait_samples;
    return (x < y) - (x > y);
}

static uint64_t stack_count(const struct stack_counts *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->ids[i] == id)
            return c->counts[i];
    return 0;
}

/* By excess, then by share: ties (nothing stands out) show what was most
 * often seen. */
static int act_by_excess(const void *a, const void *b, void *ctx)
{
    const struct lock_metrics *l = ctx;
    const struct activity *x = &l->act[*(const uint32_t *)a];
    const struct activity *y = &l->act[*(const uint32_t *)b];
    double dx = x->excess_pct, dy = y->excess_pct;
    if (dx - dy > 0.5 || dy - dx > 0.5)
        return (dx < dy) - (dx > dy);
    return (x->share_pct < y->share_pct) - (x->share_pct > y->share_pct);
}

static void finish_lock(struct run_metrics *m, struct lock_metrics *l)
{
    uint64_t their = 0;
    for (uint32_t w = 0; w < l->nwaiters; w++)
        their += m->threads[l->waiters[w]].samples;
    l->wait_pct = pct(l->wait_samples, their);
    for (uint32_t a = 0; a < l->nact; a++) {
        struct activity *x = &l->act[a];
        const struct thread_metrics *t = &m->threads[x->thread];
        x->share_pct = pct(x->count, l->activity_samples);
        x->baseline_pct = pct(stack_count(&t->stacks[x->kind], x->stack), t->samples);
        x->excess_pct = x->share_pct - x->baseline_pct;
    }
    free(l->act_order);
    l->act_order = malloc((l->nact ? l->nact : 1) * sizeof *l->act_order);
    if (!l->act_order)
        return;
    for (uint32_t a = 0; a < l->nact; a++)
        l->act_order[a] = a;
    qsort_r(l->act_order, l->nact, sizeof *l->act_order, act_by_excess, l);
}

/* CPU time a thread used between its first and last counter reads. */
static double thread_cpu_s(const struct thread_metrics *t)
{
    return t->cpu_valid ? (double)(t->cpu_last - t->cpu_first) / 1e9 : 0;
}

static void finish_thread(struct run_metrics *m, struct thread_metrics *t, bool final)
{
    if (final)
        metrics_end_wait_run(t);
    for (int k = 0; k < TS_COUNT; k++)
        t->pct[k] = pct(t->state[k], t->samples);
    double span = t->t_last - t->t_first;
    if (t->cpu_valid && span > 0) {
        t->cpu_pct = 100.0 * thread_cpu_s(t) / span;
        t->ivcs_per_s = (double)(t->ivcs_last - t->ivcs_first) / span;
    }
    t->wait.count = t->nwait_runs;
    if (t->nwait_runs) {
        qsort(t->wait_runs, t->nwait_runs, sizeof *t->wait_runs, cmp_u32);
        t->wait.p50 = t->wait_runs[nearest_rank_index(t->nwait_runs, 0.50)] * m->period_ms;
        t->wait.p99 = t->wait_runs[nearest_rank_index(t->nwait_runs, 0.99)] * m->period_ms;
        t->wait.max = t->wait_runs[t->nwait_runs - 1] * m->period_ms;
    }
}

/* final: the run is over, so the runs in progress end too. */
static void derive(struct run_metrics *m, bool final)
{
    m->rate_hz = m->duration_s > 0 ? (double)m->samples_taken / m->duration_s : 0;
    m->period_ms = m->rate_hz > 0 ? 1000.0 / m->rate_hz : 0;
    m->behind = m->samples_requested &&
                (double)m->samples_taken < METRICS_BEHIND_RATIO * (double)m->samples_requested;
    m->cpu_s = 0;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        struct thread_metrics *t = &m->threads[i];
        thread_display_name(t->python_name, t->name, m->process_name, t->display,
                            sizeof t->display);
        finish_thread(m, &m->threads[i], final);
        m->cpu_s += thread_cpu_s(&m->threads[i]);
        if (m->threads[i].loop.seen && final)
            loops_finish(&m->threads[i].loop, m->duration_s, m->period_ms / 1000.0, m->stall_ms,
                         m->duration_s);
        else if (m->threads[i].loop.seen)
            loops_derive(&m->threads[i].loop, m->duration_s);
    }
    m->gil_disabled_pct = pct(m->gil_disabled_samples, m->samples_taken);
    m->held_pct = pct(m->held, m->gil_samples);
    m->contended_pct = pct(m->contended, m->gil_samples);
    m->waiters_mean = m->gil_samples ? (double)m->waiters_sum / (double)m->gil_samples : 0;
    m->handoffs = m->switch_seen ? m->switch_last - m->switch_first : 0;
    m->handoffs_per_s = m->duration_s > 0 ? (double)m->handoffs / m->duration_s : 0;
    /* Per second of the CPU the process got: a process starved of CPU (an
     * oversubscribed VM, a tight quota) hands the GIL over less often per
     * second of wall time, however hard its threads fight for it. */
    m->handoffs_per_cpu_s = m->cpu_s >= METRICS_MIN_CPU_S ? (double)m->handoffs / m->cpu_s : 0;
    m->mean_hold_ms = m->handoffs ? m->held_pct / 100.0 * m->duration_s * 1000.0 / (double)m->handoffs
                                  : 0;
    blame_derive(m);
    for (uint32_t i = 0; i < m->nlocks; i++)
        finish_lock(m, &m->locks[i]);
    free(m->thread_order);
    free(m->lock_order);
    m->thread_order = malloc((m->nthreads ? m->nthreads : 1) * sizeof *m->thread_order);
    m->lock_order = malloc((m->nlocks ? m->nlocks : 1) * sizeof *m->lock_order);
    if (!m->thread_order || !m->lock_order)
        return;
    for (uint32_t i = 0; i < m->nthreads; i++)
        m->thread_order[i] = i;
    for (uint32_t i = 0; i < m->nlocks; i++)
        m->lock_order[i] = i;
    qsort_r(m->thread_order, m->nthreads, sizeof *m->thread_order, thread_by_wait, m);
    qsort_r(m->lock_order, m->nlocks, sizeof *m->lock_order, lock_by_wait, m);
}

void metrics_finish(struct run_metrics *m)
{
    derive(m, true);
    exact_check(m);
}

void metrics_window_finish(struct run_metrics *m)
{
    derive(m, false);
}

