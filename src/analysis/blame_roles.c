#include "analysis/blame_roles.h"

#include <stdint.h>
#include <stdlib.h>

const struct exact_thread *exact_thread_of(const struct run_metrics *m, pid_t tid)
{
    for (uint32_t i = 0; m->exact.valid && i < m->exact.nthreads; i++)
        if (m->exact.threads[i].tid == tid)
            return &m->exact.threads[i];
    return NULL;
}

uint32_t thread_index_of(const struct run_metrics *m, pid_t tid)
{
    for (uint32_t i = 0; i < m->nthreads; i++)
        if (m->threads[i].tid == tid)
            return i;
    return UINT32_MAX;
}

/* Blocked in the kernel waiting for something other than the GIL. */
static double blocked_pct(const struct thread_metrics *t)
{
    return t->pct[TS_IO_WAIT] + t->pct[TS_SLEEP] + t->pct[TS_IDLE_WAIT] + t->pct[TS_LOCK_WAIT];
}

/* The list, the wait and the bursts of one thread: exact where eBPF
 * joined its waits with the holds, else from the samples (a sample's wait
 * is worth the mean sampling period). */
static void thread_blame(struct run_metrics *m, struct thread_metrics *t)
{
    blame_finish(&t->blame_sampled, m->period_ms);
    const struct exact_thread *x = m->exact.blame_valid ? exact_thread_of(m, t->tid) : NULL;
    t->blame_exact = x != NULL;
    t->blame = x ? &x->blame : &t->blame_sampled;
    if (x) {
        /* shares are of its whole wait: the hand-offs between holds count
         * in the total, charged to nobody */
        struct blame_list *l = (struct blame_list *)&x->blame;
        if (x->wait.total_ms > l->total_ms)
            l->total_ms = x->wait.total_ms;
        t->wait_p99_ms = x->wait.count ? x->wait.p99_ms : 0;
        t->burst_ms = x->hold.count ? x->hold.mean_ms : 0;
        t->wakeups_per_s =
            m->exact.window_s > 0 ? (double)x->wakeups / m->exact.window_s : 0;
    } else {
        t->wait_p99_ms = t->wait.count ? t->wait.p99 : 0;
        /* each wake-up that waited is a run of wait samples; its burst is
         * the held time shared among them */
        double held_ms = t->pct[TS_GIL_HELD] / 100.0 * m->duration_s * 1000.0;
        t->burst_ms = t->nwait_runs ? held_ms / (double)t->nwait_runs : held_ms;
        t->wakeups_per_s = m->duration_s > 0 ? (double)t->nwait_runs / m->duration_s : 0;
    }
    t->wait_ms = t->blame->total_ms;
    double not_waiting = 100.0 - t->pct[TS_GIL_WAIT];
    t->latency_sensitive =
        not_waiting > 0 && 100.0 * blocked_pct(t) / not_waiting >= BLAME_BLOCKED_PCT;
}

static bool is_victim(const struct thread_metrics *t)
{
    return t->latency_sensitive && t->pct[TS_GIL_WAIT] >= BLAME_VICTIM_MIN_WAIT_PCT &&
           t->wait_p99_ms >= BLAME_VICTIM_MIN_P99_MS &&
           t->wait_p99_ms >= BLAME_VICTIM_BURSTS * t->burst_ms;
}

void blame_derive(struct run_metrics *m)
{
    for (uint32_t i = 0; i < m->nthreads; i++) {
        m->threads[i].caused_ms = 0;
        m->threads[i].role = ROLE_NONE;
        thread_blame(m, &m->threads[i]);
    }
    double victims_ms = 0;
    double *caused_victims = calloc(m->nthreads ? m->nthreads : 1, sizeof *caused_victims);
    for (uint32_t i = 0; i < m->nthreads; i++) {
        struct thread_metrics *t = &m->threads[i];
        bool victim = is_victim(t);
        if (victim) {
            t->role = ROLE_VICTIM;
            victims_ms += t->wait_ms;
        }
        for (uint32_t k = 0; k < t->blame->n; k++) {
            const struct blame_entry *e = &t->blame->v[k];
            uint32_t h = e->holder_tid ? thread_index_of(m, e->holder_tid) : UINT32_MAX;
            if (h == UINT32_MAX)
                continue;
            m->threads[h].caused_ms += e->ms;
            if (victim && caused_victims)
                caused_victims[h] += e->ms;
        }
    }
    for (uint32_t i = 0; caused_victims && victims_ms > 0 && i < m->nthreads; i++)
        if (m->threads[i].role != ROLE_VICTIM &&
            100.0 * caused_victims[i] / victims_ms >= BLAME_AGGRESSOR_PCT)
            m->threads[i].role = ROLE_AGGRESSOR;
    free(caused_victims);
}
