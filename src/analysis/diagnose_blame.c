#include "diagnose_blame.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/blame_roles.h"

/* Finding text, cut to its field (long names and paths may not fit). */
__attribute__((format(printf, 3, 4))) static void text(char *buf, size_t sz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sz, fmt, ap);
    va_end(ap);
}

static int by_value_desc(const void *a, const void *b)
{
    double x = ((const struct finding_thread *)a)->value;
    double y = ((const struct finding_thread *)b)->value;
    return (x < y) - (x > y);
}

/* Each aggressor's share of the victims' wait, and the function they
 * waited behind most in it. */
static void aggressor_figures(const struct run_metrics *m, struct finding_thread *a,
                              double victims_ms)
{
    double best = 0, sum = 0;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *v = &m->threads[i];
        if (v->role != ROLE_VICTIM)
            continue;
        for (uint32_t k = 0; k < v->blame->n; k++) {
            const struct blame_entry *e = &v->blame->v[k];
            if (e->holder_tid != a->tid)
                continue;
            sum += e->ms;
            if (e->ms > best && e->code) {
                best = e->ms;
                a->code = e->code;
            }
        }
    }
    a->value = victims_ms > 0 ? 100.0 * sum / victims_ms : 0;
}

void diagnose_victims(const struct run_metrics *m, struct finding *f)
{
    if (!f)
        return;
    double victims_ms = 0, p99 = 0;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        if (t->role == ROLE_VICTIM) {
            victims_ms += t->wait_ms;
            if (f->nvictims < FINDING_MAX_ROLES)
                f->victims[f->nvictims++] = (struct finding_thread){t->tid, t->wait_p99_ms, NULL};
        } else if (t->role == ROLE_AGGRESSOR && f->naggressors < FINDING_MAX_ROLES) {
            f->aggressors[f->naggressors++] = (struct finding_thread){t->tid, 0, NULL};
        }
    }
    if (!f->nvictims)
        return; /* a CPU-vs-CPU pool: S2 as it is */
    for (int i = 0; i < f->naggressors; i++)
        aggressor_figures(m, &f->aggressors[i], victims_ms);
    qsort(f->victims, (size_t)f->nvictims, sizeof f->victims[0], by_value_desc);
    qsort(f->aggressors, (size_t)f->naggressors, sizeof f->aggressors[0], by_value_desc);
    p99 = f->victims[0].value;
    double behind = 0;
    for (int i = 0; i < f->naggressors; i++)
        behind += f->aggressors[i].value;
    /* the functions the victims waited behind, each once */
    char funcs[200] = "", names[200] = "", sites[400] = "";
    size_t fu = 0, nu = 0, su = 0;
    for (int i = 0; i < f->naggressors; i++) {
        const struct code_info *c = f->aggressors[i].code;
        bool again = false;
        for (int j = 0; j < i && c; j++)
            again |= f->aggressors[j].code && strcmp(f->aggressors[j].code->name, c->name) == 0;
        if (c && !again && fu < sizeof funcs) {
            fu += (size_t)snprintf(funcs + fu, sizeof funcs - fu, "%s%s", fu ? "/" : "", c->name);
            if (su < sizeof sites)
                su += (size_t)snprintf(sites + su, sizeof sites - su, "%s%s (%s:%d)",
                                       su ? "; " : "", c->name, c->filename, c->firstlineno);
        }
        uint32_t k = thread_index_of(m, f->aggressors[i].tid);
        if (k != UINT32_MAX && nu < sizeof names)
            nu += (size_t)snprintf(names + nu, sizeof names - nu, "%s%s", nu ? ", " : "",
                                   m->threads[k].display);
    }
    uint32_t v0 = thread_index_of(m, f->victims[0].tid);
    const char *vname = v0 != UINT32_MAX ? m->threads[v0].display : "?";
    char more[64] = "";
    if (f->nvictims > 1)
        text(more, sizeof more, " (and %d more latency-sensitive thread%s)", f->nvictims - 1,
                 f->nvictims > 2 ? "s" : "");
    text(f->verdict, sizeof f->verdict,
             "the latency-sensitive thread %s%s waits p99 %.1f ms for the GIL after its I/O "
             "(%.3g ms switch interval); %.0f%% of the victims' wait is behind %s in %d "
             "CPU-bound thread%s (%s)",
             vname, more, p99, (double)m->interval_us / 1000.0, behind,
             funcs[0] ? funcs : "Python code", f->naggressors, f->naggressors == 1 ? "" : "s",
             names);
    diagnose_evidence(f, "victim.gil_wait_p99_ms", p99, ">=", BLAME_VICTIM_MIN_P99_MS);
    text(f->culprit, sizeof f->culprit, "the aggressors' code: %s, in %s",
             sites[0] ? sites : "(no Python frame seen)", names);
    text(f->advice, sizeof f->advice,
             "The victims' latency is the aggressors' GIL holds: every time a victim's I/O "
             "completes it queues behind CPU-bound Python. Move the aggressors' work out of the "
             "process (ProcessPoolExecutor, a worker service) or into C that releases the GIL "
             "(NumPy, hashlib, zlib, re on large inputs does not); keep latency-sensitive "
             "threads in a process of their own. A smaller switch interval "
             "(sys.setswitchinterval) shortens each wait only by adding hand-offs, trading "
             "throughput; on 3.13+ the free-threaded build removes the GIL wait.");
}

/* The thread whose holds t waited behind most, and its share (%) of the
 * wait charged to a holder (the futex fallback misses holds that end in a
 * forced switch; what it did not see is nobody's, not another thread's). */
static const struct blame_entry *top_holder(const struct thread_metrics *t, double *share)
{
    const struct blame_entry *best = NULL;
    double by[BLAME_MAX_ENTRIES] = {0};
    /* a holder may appear once per function: sum them per holder */
    for (uint32_t i = 0; i < t->blame->n && i < BLAME_MAX_ENTRIES; i++)
        for (uint32_t j = 0; j <= i; j++)
            if (t->blame->v[j].holder_tid == t->blame->v[i].holder_tid) {
                by[j] += t->blame->v[i].ms;
                break;
            }
    double most = 0, charged = 0;
    for (uint32_t i = 0; i < t->blame->n && i < BLAME_MAX_ENTRIES; i++) {
        charged += t->blame->v[i].ms;
        if (t->blame->v[i].holder_tid && by[i] > most) {
            most = by[i];
            best = &t->blame->v[i];
        }
    }
    *share = charged > 0 ? 100.0 * most / charged : 0;
    return best;
}

/* The convoy figures of t, true when it is one. */
static bool convoy_of(const struct run_metrics *m, const struct thread_metrics *t,
                      struct convoy_figures *c)
{
    double interval = (double)m->interval_us / 1000.0;
    if (interval <= 0 || m->handoffs_unmeasured || !t->blame || t->wakeups_per_s <
        CONVOY_MIN_WAKEUPS_PER_S || t->burst_ms >= CONVOY_BURST_MAX_INTERVALS * interval)
        return false;
    const struct exact_thread *x = t->blame_exact ? exact_thread_of(m, t->tid) : NULL;
    double wakeups = x ? (double)x->wakeups : (double)t->nwait_runs;
    double wait_mean = wakeups > 0 ? (x ? x->wait.total_ms : t->wait_ms) / wakeups : 0;
    double long_share = x && x->wakeups ? (double)x->waits_long / (double)x->wakeups : -1;
    double lo = x ? CONVOY_WAIT_MIN_INTERVALS_EXACT : CONVOY_WAIT_MIN_INTERVALS;
    if (wait_mean < lo * interval || wait_mean > CONVOY_WAIT_MAX_INTERVALS * interval ||
        (x && long_share < CONVOY_LONG_WAIT_SHARE))
        return false;
    double share;
    const struct blame_entry *h = top_holder(t, &share);
    uint32_t hi = h ? thread_index_of(m, h->holder_tid) : UINT32_MAX;
    if (hi == UINT32_MAX || share < CONVOY_HOLDER_SHARE_PCT)
        return false;
    const struct thread_metrics *ht = &m->threads[hi];
    if (ht->pct[TS_GIL_HELD] + ht->pct[TS_GIL_WAIT] < CONVOY_HOLDER_GIL_PCT)
        return false;
    *c = (struct convoy_figures){
        .tid = t->tid,
        .holder = h->holder_tid,
        .holder_code = h->code,
        .wakeups_per_s = t->wakeups_per_s,
        .cap_model_per_s = 1000.0 / (interval + t->burst_ms),
        .interval_ms = interval,
        .wait_mean_ms = wait_mean,
        .burst_ms = t->burst_ms,
        .waits_per_wakeup = long_share,
    };
    return true;
}

void rule_convoy(const struct run_metrics *m, struct diagnosis *d)
{
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        struct convoy_figures c;
        if (!convoy_of(m, t, &c))
            continue;
        struct finding *f = diagnose_add(d, "S2",
                                         "Convoy effect: an I/O thread waits a switch interval "
                                         "for the GIL after every wake-up",
                                         SEV_WARNING);
        if (!f)
            return;
        f->has_convoy = true;
        f->convoy = c;
        uint32_t hi = thread_index_of(m, c.holder);
        const char *holder = hi != UINT32_MAX ? m->threads[hi].display : "?";
        text(f->verdict, sizeof f->verdict,
                 "thread %d %s wakes up %.0f times/s and waits %.2f ms for the GIL each time "
                 "(switch interval %.3g ms, its bursts %.2f ms): its throughput is capped near "
                 "%.0f wake-ups/s at this interval, behind CPU-bound thread %d %s",
                 t->tid, t->display, c.wakeups_per_s, c.wait_mean_ms, c.interval_ms, c.burst_ms,
                 c.cap_model_per_s, c.holder, holder);
        diagnose_evidence(f, "convoy.wakeups_per_s", c.wakeups_per_s, ">=",
                          CONVOY_MIN_WAKEUPS_PER_S);
        diagnose_evidence(f, "convoy.wait_mean_ms", c.wait_mean_ms, ">=",
                          (c.waits_per_wakeup >= 0 ? CONVOY_WAIT_MIN_INTERVALS_EXACT
                                                   : CONVOY_WAIT_MIN_INTERVALS) *
                              c.interval_ms);
        diagnose_evidence(f, "convoy.burst_ms", c.burst_ms, "<=",
                          CONVOY_BURST_MAX_INTERVALS * c.interval_ms);
        if (c.waits_per_wakeup >= 0)
            diagnose_evidence(f, "convoy.waits_per_wakeup", c.waits_per_wakeup, ">=",
                              CONVOY_LONG_WAIT_SHARE);
        if (c.holder_code)
            text(f->culprit, sizeof f->culprit, "thread %d %s running %s (%s:%d)", c.holder,
                     holder, c.holder_code->name, c.holder_code->filename,
                     c.holder_code->firstlineno);
        else
            text(f->culprit, sizeof f->culprit, "thread %d %s", c.holder, holder);
        text(f->advice, sizeof f->advice,
                 "Each time the I/O thread blocks, even for microseconds, it gives the GIL up, "
                 "and the CPU-bound thread keeps it for a whole switch interval before handing "
                 "it back (CPython issue 7946). Move the CPU-bound work out of the process "
                 "(ProcessPoolExecutor, a worker process) or into C that releases the GIL, or "
                 "read in bigger batches so there are fewer wake-ups. A smaller switch interval "
                 "(sys.setswitchinterval) raises the cap only by trading the CPU-bound thread's "
                 "throughput for more hand-offs: it is not a fix.");
    }
}
