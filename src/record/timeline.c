#include "record/timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int timeline_init(struct timeline *tl, double keep_s)
{
    memset(tl, 0, sizeof *tl);
    tl->cap = keep_s >= 1 ? (uint32_t)keep_s : 1;
    tl->e = calloc(tl->cap, sizeof *tl->e);
    return tl->e ? 0 : -1;
}

void timeline_free(struct timeline *tl)
{
    free(tl->e);
    memset(tl, 0, sizeof *tl);
}

const struct timeline_entry *timeline_at(const struct timeline *tl, uint32_t i)
{
    return i < tl->count ? &tl->e[(tl->head + i) % tl->cap] : NULL;
}

static double thread_weight(const struct thread_metrics *t)
{
    return t->pct[TS_GIL_HELD] + t->pct[TS_GIL_WAIT] + t->pct[TS_LOCK_WAIT];
}

static double entry_weight(const struct timeline_thread *x)
{
    return x->held_pct + x->wait_pct + x->lock_wait_pct;
}

/* The TIMELINE_THREADS threads that held or waited most this second. */
static void add_threads(struct timeline_entry *e, const struct run_metrics *m)
{
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        if (!t->samples)
            continue;
        uint32_t at = e->nthreads;
        if (at == TIMELINE_THREADS) {
            /* full: replace the lightest if this one weighs more */
            uint32_t min = 0;
            for (uint32_t k = 1; k < at; k++)
                if (entry_weight(&e->threads[k]) < entry_weight(&e->threads[min]))
                    min = k;
            if (entry_weight(&e->threads[min]) >= thread_weight(t))
                continue;
            at = min;
        } else {
            e->nthreads++;
        }
        struct timeline_thread *x = &e->threads[at];
        x->tid = t->tid;
        snprintf(x->name, sizeof x->name, "%s", t->python_name[0] ? t->python_name : t->name);
        x->held_pct = t->pct[TS_GIL_HELD];
        x->wait_pct = t->pct[TS_GIL_WAIT];
        x->lock_wait_pct = t->pct[TS_LOCK_WAIT];
        x->cpu_pct = t->cpu_pct;
    }
}

void timeline_add(struct timeline *tl, const struct run_metrics *m, double t, double unix_s,
                  uint64_t rss_kb)
{
    uint32_t at;
    if (tl->count < tl->cap) {
        at = (tl->head + tl->count++) % tl->cap;
    } else {
        at = tl->head;
        tl->head = (tl->head + 1) % tl->cap;
    }
    struct timeline_entry *e = &tl->e[at];
    memset(e, 0, sizeof *e);
    e->t = t;
    e->unix_s = unix_s;
    e->held_pct = m->held_pct;
    e->contended_pct = m->contended_pct;
    e->waiters_mean = m->waiters_mean;
    e->waiters_max = m->waiters_max;
    e->handoffs_per_s = m->handoffs_unmeasured ? -1 : m->handoffs_per_s;
    const struct exact_gil *x = &m->exact;
    e->exact = x->valid;
    if (x->valid) {
        e->exact_held_pct = x->held_pct;
        e->wait_p50_ms = x->wait.p50_ms;
        e->wait_p99_ms = x->wait.p99_ms;
        e->wait_max_ms = x->wait.max_ms;
        e->hold_p99_ms = x->hold.p99_ms;
        e->hold_max_ms = x->hold.max_ms;
    }
    uint64_t runnable = 0;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *th = &m->threads[i];
        runnable += th->state[TS_GIL_HELD] + th->state[TS_GIL_WAIT] + th->state[TS_NOGIL_RUNNING];
    }
    e->runnable_mean = m->samples_taken ? (double)runnable / (double)m->samples_taken : 0;
    e->python_threads = m->py_max;
    e->os_threads = m->os_max;
    e->rss_kb = rss_kb;
    add_threads(e, m);
    for (uint32_t i = 0; i < m->nlocks && e->nlocks < TIMELINE_LOCKS; i++) {
        const struct lock_metrics *l = &m->locks[m->lock_order ? m->lock_order[i] : i];
        e->locks[e->nlocks++] = (struct timeline_lock){l->addr, l->wait_pct, l->nwaiters};
    }
    for (uint32_t i = 0; i < m->nthreads && e->nloops < TIMELINE_LOOPS; i++) {
        const struct loop_track *l = &m->threads[i].loop;
        if (!l->seen || !l->samples)
            continue;
        e->loops[e->nloops++] =
            (struct timeline_loop){m->threads[i].tid, l->busy_pct, l->stall_max_ms, l->nstalls};
    }
}
