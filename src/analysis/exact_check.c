#include "analysis/exact_check.h"

#include <math.h>

double exact_check_tolerance(double p_pct, uint64_t n, uint64_t k)
{
    if (!n)
        return 100.0;
    /* A sampled share's error: samples at a fixed period over a state that
     * changes k times are off by up to half a period at each change
     * (uniform: variance period^2/12 per change) - far better than n
     * independent draws when states last longer than a period, and never
     * worse than them when they change faster. */
    double p = p_pct / 100.0;
    double binomial = sqrt(p * (1 - p) / (double)n);
    double boundaries = sqrt((double)k / 6.0) / (double)n;
    double se = boundaries < binomial ? boundaries : binomial;
    return EXACT_CHECK_FLOOR_PCT + EXACT_CHECK_SIGMAS * 100.0 * se;
}

void exact_check(struct run_metrics *m)
{
    struct exact_gil *x = &m->exact;
    struct exact_check *c = &x->check;
    *c = (struct exact_check){0};
    if (!x->valid || !m->gil_samples)
        return;
    c->done = true;
    c->sampled_held_pct = m->held_pct;
    uint64_t ticks = m->samples_taken + m->missed;
    c->sampler_missed_pct = ticks ? 100.0 * (double)m->missed / (double)ticks : 0;
    c->held_diff = fabs(x->held_pct - m->held_pct);
    c->held_tolerance = exact_check_tolerance(m->held_pct, m->gil_samples, x->acquisitions);
    c->consistent = c->held_diff <= c->held_tolerance;
    for (uint32_t i = 0; i < x->nthreads; i++) {
        const struct exact_thread *e = &x->threads[i];
        const struct thread_metrics *t = NULL;
        for (uint32_t k = 0; k < m->nthreads && !t; k++)
            if (m->threads[k].tid == e->tid)
                t = &m->threads[k];
        if (!t || (double)t->samples < EXACT_CHECK_MIN_LIFE * (double)m->samples_taken)
            continue;
        c->threads_compared++;
        double sampled = t->pct[TS_GIL_WAIT];
        double diff = fabs(e->wait_pct - sampled);
        double tol = exact_check_tolerance(sampled, t->samples, e->acquisitions);
        if (diff > tol)
            c->consistent = false;
        if (!c->worst_tid || diff - tol > c->worst_wait_diff - c->worst_tolerance) {
            c->worst_tid = e->tid;
            c->worst_exact_wait_pct = e->wait_pct;
            c->worst_sampled_wait_pct = sampled;
            c->worst_wait_diff = diff;
            c->worst_tolerance = tol;
        }
    }
}
