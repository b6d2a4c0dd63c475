#include "analysis/diagnose.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose_blame.h"
#include "diagnose_pools.h"
#include "python/classify.h"

/* Thresholds: starting points tuned on examples/, named here and nowhere
 * else (one place for them: easy to find, to tune, to test). */
#define S1_STALLED_PCT_WARN 5.0     /* loop stalled by on-CPU work */
#define S1_STALLED_PCT_CRIT 20.0
#define S1_MAX_STALL_CRIT_MS 1000.0
#define S1_SATURATED_BUSY_PCT 50.0  /* loop out of its selector, no stall needed */
#define S1_SATURATED_CULPRIT_PCT 30.0 /* of that busy time on CPU in one place */
#define S3_STALLED_PCT_WARN 5.0     /* loop stalled by a blocking call */
#define S3_STALLED_PCT_CRIT 20.0
#define S7_LAG_INFO_MS 100.0
#define S2_CONTENDED_PCT 50.0       /* GIL thrashing */
#define S2_WAITERS_MEAN_WARN 1.5
#define S2_WAITERS_MEAN_CRIT 3.0
#define S2_HANDOFFS_PER_S 50.0
#define S2_THREAD_WAIT_PCT 30.0
#define S5_WAITERS 2                /* lock contention */
#define S5_WAIT_PCT_WARN 20.0
#define S5_WAIT_PCT_CRIT 50.0
#define S4_GROWTH_PER_S 1.0         /* worker processes multiply */
#define S4_GROWTH_CRIT_PER_S 5.0
#define S4_ZOMBIES 3                /* unreaped children */
#define S6_CPU_BOUND_SHARE 0.5      /* the target itself, using half a CPU, is a worker */
#define S6_SATURATION 0.5           /* the workers keep at least half the cores busy */
#define S8_THREADS 100              /* hundreds of threads */
#define S8_RSS_GROWTH_KB_S 1024.0   /* memory keeps growing: 1 MiB/s */

const char *severity_name(enum severity s)
{
    return s == SEV_CRITICAL ? "critical" : s == SEV_WARNING ? "warning" : "info";
}

static struct finding *add(struct diagnosis *d, const char *scenario, const char *title,
                           enum severity sev)
{
    if (d->n == DIAGNOSE_MAX_FINDINGS)
        return NULL;
    struct finding *f = &d->findings[d->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->scenario, sizeof f->scenario, "%s", scenario);
    snprintf(f->title, sizeof f->title, "%s", title);
    f->severity = sev;
    return f;
}

static void evidence(struct finding *f, const char *metric, double value, const char *op,
                     double threshold)
{
    if (f->nevidence == FINDING_MAX_EVIDENCE)
        return;
    struct evidence *e = &f->evidence[f->nevidence++];
    snprintf(e->metric, sizeof e->metric, "%s", metric);
    snprintf(e->op, sizeof e->op, "%s", op);
    e->value = value;
    e->threshold = threshold;
}

__attribute__((format(printf, 3, 4))) static void text(char *buf, size_t sz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sz, fmt, ap);
    va_end(ap);
}

static void frame_text(const struct run_metrics *m, uint32_t stack, char *buf, size_t sz)
{
    stack_site_text(stack_table_get(&m->stacks, stack), buf, sz);
}

/* The advice of both S1 rules (a macro: a format string the compiler checks). */
#define S1_ADVICE                                                                                \
    "Move the CPU work in %s off the loop: `await loop.run_in_executor(pool, ...)` with a "     \
    "ProcessPoolExecutor for pure-Python work (a thread pool only helps where the C code "      \
    "releases the GIL: hashlib on large inputs, zlib, numpy), or hand heavy jobs to a queue "   \
    "(Celery, RQ, Dramatiq, Arq)."

/* S1 and S3: a loop stalled, on CPU (S1) or blocked in a syscall (S3).
 * False when the loop's stalls make no such finding. */
static bool loop_stall_finding(const struct run_metrics *m, const struct thread_metrics *t,
                               struct diagnosis *d)
{
    const struct loop_track *l = &t->loop;
    if (!l->nstalls || !l->nculprits)
        return false;
    const struct loop_culprit *c = &l->culprits[0];
    bool on_cpu = c->on_cpu_samples >= c->blocked_samples;
    /* Stalled waiting for the GIL: other threads make it late (S7). */
    if (!on_cpu && c->gil_wait_samples * 2 > c->blocked_samples)
        return false;
    double warn = on_cpu ? S1_STALLED_PCT_WARN : S3_STALLED_PCT_WARN;
    double crit = on_cpu ? S1_STALLED_PCT_CRIT : S3_STALLED_PCT_CRIT;
    if (l->stalled_pct < warn)
        return false;
    enum severity sev = l->stalled_pct >= crit || l->stall_max_ms >= S1_MAX_STALL_CRIT_MS
                            ? SEV_CRITICAL
                            : SEV_WARNING;
    char where[600];
    frame_text(m, c->frame, where, sizeof where);
    const char *sys = c->syscall >= 0 ? syscall_name(c->syscall) : NULL;
    struct finding *f =
        on_cpu ? add(d, "S1", "CPU-bound work blocks the asyncio event loop", sev)
               : add(d, "S3", "A blocking call inside a coroutine stalls the event loop", sev);
    if (!f)
        return true;
    text(f->verdict, sizeof f->verdict,
         "the event loop in thread %d was stalled %.1f%% of the time (%u stalls, longest "
         "%.0f ms) by %s",
         t->tid, l->stalled_pct, l->nstalls, l->stall_max_ms,
         on_cpu ? "CPU-bound code running inside it" : "a blocking call");
    evidence(f, "loop.stalled_pct", l->stalled_pct, ">=", warn);
    evidence(f, "loop.stall_count", l->nstalls, ">=", 1);
    evidence(f, "loop.stall_max_ms", l->stall_max_ms, ">=", m->stall_ms);
    evidence(f, "loop.culprit_share_pct", c->share_pct, ">=", 0);
    char ctx[700];
    loops_context_text(&m->stacks, c, ctx, sizeof ctx);
    text(f->culprit, sizeof f->culprit, "%s%s%s%s%s", where, on_cpu ? ", on CPU" : ", blocked in ",
         on_cpu ? "" : (sys ? sys : "a syscall"), ctx[0] ? "; " : "", ctx);
    if (on_cpu)
        text(f->advice, sizeof f->advice, S1_ADVICE, where);
    else
        text(f->advice, sizeof f->advice,
             "Replace the blocking %s in %s with its async equivalent (asyncio.sleep, "
             "aiohttp/httpx, asyncpg, loop.sock_recv / streams) or push it to an executor "
             "(`await loop.run_in_executor(None, ...)`); bound concurrency with "
             "asyncio.Semaphore. `PYTHONASYNCIODEBUG=1` reports slow callbacks to confirm.",
             sys ? sys : "call", where);
    return true;
}

/* S1 without a stall: the loop spends most of its time out of its
 * selector running one piece of code, every stretch shorter than the stall
 * threshold. Requests still queue behind it: a p99 problem all the same. */
static void loop_saturation_finding(const struct run_metrics *m, const struct thread_metrics *t,
                                    struct diagnosis *d)
{
    const struct loop_track *l = &t->loop;
    if (l->busy_pct < S1_SATURATED_BUSY_PCT || !l->nbusy_culprits)
        return;
    const struct loop_culprit *c = &l->busy_culprits[0];
    if (c->share_pct < S1_SATURATED_CULPRIT_PCT)
        return;
    struct finding *f = add(d, "S1", "CPU-bound work saturates the asyncio event loop", SEV_WARNING);
    if (!f)
        return;
    char where[600];
    frame_text(m, c->frame, where, sizeof where);
    text(f->verdict, sizeof f->verdict,
         "the event loop in thread %d was busy %.0f%% of the time, %.0f%% of that on CPU in one "
         "function; no stretch reached the %.0f ms stall threshold (longest %.0f ms), but every "
         "request waits behind this work",
         t->tid, l->busy_pct, c->share_pct, m->stall_ms, l->busy_max_ms);
    evidence(f, "loop.busy_pct", l->busy_pct, ">=", S1_SATURATED_BUSY_PCT);
    evidence(f, "loop.busy_culprit_share_pct", c->share_pct, ">=", S1_SATURATED_CULPRIT_PCT);
    evidence(f, "loop.busy_max_ms", l->busy_max_ms, ">=", 0);
    evidence(f, "loop.stall_count", l->nstalls, ">=", 0);
    text(f->culprit, sizeof f->culprit, "%s, on CPU", where);
    text(f->advice, sizeof f->advice, S1_ADVICE, where);
}

static void rule_loop_stalls(const struct run_metrics *m, struct diagnosis *d)
{
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        if (t->loop.seen && !loop_stall_finding(m, t, d))
            loop_saturation_finding(m, t, d);
    }
}

/* The culprit of an S7: what kept the loop busy at the timeouts'
 * deadlines - the stall culprit that made most of them expire, or the GIL
 * holder a GIL-starved loop waited for. */
static void lateness_culprit(const struct run_metrics *m, uint32_t i, const struct loop_culprit *c,
                             bool gil_starved, struct finding *f)
{
    const struct thread_metrics *t = &m->threads[i];
    if (!c) {
        text(f->culprit, sizeof f->culprit, "event loop in thread %d", t->tid);
        return;
    }
    char where[600], ctx[700];
    frame_text(m, c->frame, where, sizeof where);
    if (gil_starved) {
        const struct thread_metrics *hog = NULL;
        for (uint32_t k = 0; k < m->nthreads; k++)
            if (k != i && (!hog || m->threads[k].pct[TS_GIL_HELD] > hog->pct[TS_GIL_HELD]))
                hog = &m->threads[k];
        text(f->culprit, sizeof f->culprit,
             "event loop in thread %d waits for the GIL at %s; thread %d %s holds it %.0f%% "
             "of the time",
             t->tid, where, hog ? hog->tid : 0, hog ? hog->name : "?",
             hog ? hog->pct[TS_GIL_HELD] : 0.0);
        return;
    }
    loops_context_text(&m->stacks, c, ctx, sizeof ctx);
    text(f->culprit, sizeof f->culprit, "%s%s%s%s", where,
         c->on_cpu_samples >= c->blocked_samples ? ", on CPU" : ", blocked", ctx[0] ? "; " : "",
         ctx);
}

/* S7, observed: timeouts (wait_for / asyncio.timeout) that were pending on
 * the loop's timer heap and whose deadline passed while the loop was busy,
 * so they fire whatever the awaited work did. Expired in stalls, this is
 * what the user sees (TimeoutError) and it leads the report. Lag without
 * any timeout pending is S1/S3's business: S7 at most information then,
 * and when the heap could not be read (uvloop), a possibility only. */
static void rule_loop_lateness(const struct run_metrics *m, struct diagnosis *d)
{
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        const struct loop_track *l = &t->loop;
        const struct loop_timers *lt = &l->timers;
        if (!l->seen || (!lt->timeouts_expired && l->timer_lag_max_ms < S7_LAG_INFO_MS))
            continue;
        const struct loop_culprit *c = l->nculprits ? &l->culprits[0] : NULL;
        for (uint32_t k = 0; k < l->nculprits; k++)
            if (l->culprits[k].timeouts_expired > (c ? c->timeouts_expired : 0))
                c = &l->culprits[k];
        bool gil_starved = c && c->on_cpu_samples < c->blocked_samples &&
                           c->gil_wait_samples * 2 > c->blocked_samples;
        enum severity sev = !lt->timeouts_expired               ? SEV_INFO
                            : lt->timeouts_expired_in_stalls > 0 ? SEV_CRITICAL
                                                                 : SEV_WARNING;
        struct finding *f =
            add(d, "S7",
                lt->timeouts_expired ? "asyncio timeouts fire because the loop is late"
                                     : "asyncio timers run late (no timeout seen expire)",
                sev);
        if (!f)
            return;
        f->leads = lt->timeouts_expired_in_stalls > 0;
        if (lt->timeouts_expired)
            text(f->verdict, sizeof f->verdict,
                 "%llu asyncio timeouts (wait_for / timeout) on the loop of thread %d expired "
                 "because the loop was busy at their deadline, %llu of them during its %u stalls "
                 "(longest %.0f ms); up to %u were pending at once: they measure the stalls, not "
                 "the awaited work",
                 (unsigned long long)lt->timeouts_expired, t->tid,
                 (unsigned long long)lt->timeouts_expired_in_stalls, l->nstalls, l->stall_max_ms,
                 lt->timeouts_pending_max);
        else if (lt->read)
            text(f->verdict, sizeof f->verdict,
                 "timers on the loop of thread %d ran up to %.0f ms late, but %s: no timeout "
                 "fired because of it",
                 t->tid, l->timer_lag_max_ms,
                 lt->timeouts_seen ? "none of its timeouts was due while it was busy"
                                   : "no timeout (wait_for / timeout) was pending");
        else
            text(f->verdict, sizeof f->verdict,
                 "a timer on the loop of thread %d could fire up to %.0f ms late (%.1f ms on "
                 "average); whether timeouts were pending is not known (its timer heap was not "
                 "read)",
                 t->tid, l->timer_lag_max_ms, l->timer_lag_mean_ms);
        if (lt->timeouts_expired) {
            evidence(f, "loop.timeouts_expired", (double)lt->timeouts_expired, ">=", 1);
            evidence(f, "loop.timeouts_expired_in_stalls", (double)lt->timeouts_expired_in_stalls,
                     ">=", 0);
            evidence(f, "loop.timeouts_pending_max", lt->timeouts_pending_max, ">=", 1);
        }
        evidence(f, "loop.timer_lag_max_ms", l->timer_lag_max_ms, ">=", 0);
        if (l->timer_lag_measured)
            evidence(f, "loop.timer_lag_p99_ms", l->timer_lag_p99_ms, ">=", 0);
        lateness_culprit(m, i, c, gil_starved, f);
        text(f->advice, sizeof f->advice,
             "Remove the stalls first (see S1/S3); put timeouts around the inner operations, "
             "not the whole handler; propagate a deadline (contextvars) and check it before "
             "expensive steps; use asyncio.timeout()/TaskGroup (3.11+).");
    }
}

/* asyncio tasks pile up: a loop's task count rose steadily (created
 * faster than they finish: a leak, or work arriving faster than it is
 * done). Counted for the whole process before 3.14: reported once. */
static void rule_task_growth(const struct run_metrics *m, struct diagnosis *d)
{
    bool process_told = false;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        const struct loop_tasks *lt = &t->loop.tasks;
        if (!t->loop.seen || !lt->growing || (!lt->per_thread && process_told))
            continue;
        process_told |= !lt->per_thread;
        struct finding *f =
            add(d, "tasks", "asyncio tasks pile up: created faster than they finish", SEV_WARNING);
        if (!f)
            return;
        const struct loop_task_point *a = &lt->v[0], *b = &lt->v[lt->n - 1];
        char whose[64];
        if (lt->per_thread)
            text(whose, sizeof whose, "of the loop in thread %d", t->tid);
        else
            text(whose, sizeof whose, "of the process");
        text(f->verdict, sizeof f->verdict,
             "the asyncio tasks %s went from %u to %u in %.0f s (%+.1f per second, a steady rise: "
             "r2 %.2f): tasks are created faster than they finish",
             whose, a->n, b->n, b->t - a->t, lt->growth_per_s, lt->fit_r2);
        evidence(f, "loop.tasks_growth_per_s", lt->growth_per_s, ">=", 1);
        evidence(f, "loop.tasks", lt->last, ">=", 0);
        if (lt->ngroups && lt->groups[0].frame) {
            char where[600];
            frame_text(m, lt->groups[0].frame, where, sizeof where);
            text(f->culprit, sizeof f->culprit, "%u of the %u tasks alive at the end run %s", lt->groups[0].count,
                 lt->grouped, where);
        } else {
            text(f->culprit, sizeof f->culprit, "tasks %s (their coroutines were not read)", whose);
        }
        text(f->advice, sizeof f->advice,
             "Bound what creates them (the coroutine above): keep a reference to every task and "
             "await or cancel it (asyncio.TaskGroup in 3.11+, gather), cap concurrency with an "
             "asyncio.Semaphore or a bounded asyncio.Queue of work, and put a timeout on what the "
             "tasks wait for.");
    }
}

/* S2: many threads fight for the GIL; short holds, long waits. */
static void rule_gil_thrashing(const struct run_metrics *m, struct diagnosis *d)
{
    /* Hand-offs per second of wall time, or of the CPU the process got: on
     * an oversubscribed machine or under a tight quota (S2's own story)
     * eight fighting threads measured 20/s of wall time, 204 per CPU-second. */
    bool per_cpu = m->handoffs_per_s < S2_HANDOFFS_PER_S;
    if (m->contended_pct < S2_CONTENDED_PCT || m->waiters_mean < S2_WAITERS_MEAN_WARN ||
        (per_cpu && m->handoffs_per_cpu_s < S2_HANDOFFS_PER_S))
        return;
    uint32_t waiting = 0;
    const struct thread_metrics *worst = NULL;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        if (t->pct[TS_GIL_WAIT] >= S2_THREAD_WAIT_PCT)
            waiting++;
        if (!worst || t->pct[TS_GIL_WAIT] > worst->pct[TS_GIL_WAIT])
            worst = t;
    }
    struct finding *f = add(d, "S2", "GIL thrashing: threads spend their time waiting for the GIL",
                            m->waiters_mean >= S2_WAITERS_MEAN_CRIT ? SEV_CRITICAL : SEV_WARNING);
    if (!f || !worst)
        return;
    double p99 = m->exact.valid ? m->exact.wait.p99_ms : worst->wait.p99;
    char starved[160] = "";
    if (per_cpu && m->duration_s > 0)
        text(starved, sizeof starved, " (%.0f per second of CPU: the process got %.0f%% of one CPU)",
             m->handoffs_per_cpu_s, 100.0 * m->cpu_s / m->duration_s);
    text(f->verdict, sizeof f->verdict,
         "%u threads wait for the GIL %.0f%%+ of the time; on average %.1f threads wait while "
         "one runs, the GIL changes hands %.0f times/s%s, p99 wait %.1f ms vs a %.3g ms switch "
         "interval",
         waiting, S2_THREAD_WAIT_PCT, m->waiters_mean, m->handoffs_per_s, starved, p99,
         (double)m->interval_us / 1000.0);
    evidence(f, "gil.contended_pct", m->contended_pct, ">=", S2_CONTENDED_PCT);
    evidence(f, "gil.waiters_mean", m->waiters_mean, ">=", S2_WAITERS_MEAN_WARN);
    if (per_cpu)
        evidence(f, "gil.handoffs_per_cpu_s", m->handoffs_per_cpu_s, ">=", S2_HANDOFFS_PER_S);
    else
        evidence(f, "gil.handoffs_per_s", m->handoffs_per_s, ">=", S2_HANDOFFS_PER_S);
    evidence(f, "gil.wait_p99_ms", p99, ">=", 0);
    evidence(f, "thread.max_gil_wait_pct", worst->pct[TS_GIL_WAIT], ">=", S2_THREAD_WAIT_PCT);
    char where[600] = "";
    uint32_t *rank = stack_counts_ranked(&worst->stacks[TS_GIL_WAIT]);
    if (rank && worst->stacks[TS_GIL_WAIT].n)
        frame_text(m, worst->stacks[TS_GIL_WAIT].ids[rank[0]], where, sizeof where);
    free(rank);
    text(f->culprit, sizeof f->culprit, "%u CPU-bound threads, e.g. thread %d %s waiting at %s",
         waiting, worst->tid, worst->name, where[0] ? where : "(unknown)");
    text(f->advice, sizeof f->advice,
         "Only one thread runs Python at a time: keep at most one CPU-bound Python thread and "
         "move CPU-bound work to processes (multiprocessing / ProcessPoolExecutor); raise the "
         "switch interval (sys.setswitchinterval) if hand-offs dominate; size for the vCPUs "
         "really available and check steal time; on 3.13+ consider the free-threaded build.");
    diagnose_victims(m, f);
    /* the victims' verdict replaces the pool's; a starved process keeps its
     * hand-off rate per CPU-second, the evidence that made this S2 */
    if (f->nvictims && starved[0]) {
        size_t len = strlen(f->verdict);
        text(f->verdict + len, sizeof f->verdict - len, "; the GIL changes hands %.0f times/s%s",
             m->handoffs_per_s, starved);
    }
}

/* S5: threads queue on one lock. */
static void rule_lock_contention(const struct run_metrics *m, struct diagnosis *d)
{
    for (uint32_t k = 0; k < m->nlocks; k++) {
        const struct lock_metrics *l = &m->locks[m->lock_order ? m->lock_order[k] : k];
        if (l->nwaiters < S5_WAITERS || l->wait_pct < S5_WAIT_PCT_WARN)
            continue;
        struct finding *f = add(d, "S5", "Lock contention around a critical section",
                                l->wait_pct >= S5_WAIT_PCT_CRIT ? SEV_CRITICAL : SEV_WARNING);
        if (!f)
            return;
        char site[600] = "(unknown)", holder[700] = "";
        uint32_t *rank = stack_counts_ranked(&l->sites);
        if (rank && l->sites.n)
            frame_text(m, l->sites.ids[rank[0]], site, sizeof site);
        free(rank);
        if (l->nact && l->act_order) {
            const struct activity *a = &l->act[l->act_order[0]];
            char fr[600];
            frame_text(m, a->stack, fr, sizeof fr);
            text(holder, sizeof holder, "; meanwhile thread %d %s was %s at %s",
                 m->threads[a->thread].tid, m->threads[a->thread].name,
                 tstate_kind_label(a->kind), fr);
        }
        text(f->verdict, sizeof f->verdict,
             "%u threads spend %.0f%% of their time waiting on the lock at 0x%" PRIx64,
             l->nwaiters, l->wait_pct, l->addr);
        evidence(f, "lock.waiters", l->nwaiters, ">=", S5_WAITERS);
        evidence(f, "lock.wait_pct", l->wait_pct, ">=", S5_WAIT_PCT_WARN);
        text(f->culprit, sizeof f->culprit, "lock 0x%" PRIx64 " waited on at %s%s", l->addr, site,
             holder);
        text(f->advice, sizeof f->advice,
             "Shrink the critical section guarded at %s; batch the work done under it (bulk "
             "writes, one flush per N items); shard the lock by key (with a global lock order); "
             "or give the resource a single owner thread fed by a queue. A readers-writer lock "
             "only helps when reads dominate (the standard library has none).",
             site);
    }
}

/* S4: the process tree grows, or children are not reaped. */
static void rule_process_growth(const struct run_metrics *m, struct diagnosis *d)
{
    const struct system_view *v = &m->system;
    bool growing = v->children_growth_per_s >= S4_GROWTH_PER_S;
    bool zombies = v->tree_end.zombies >= S4_ZOMBIES;
    if (!growing && !zombies)
        return;
    int cpus = v->cpu.affinity ? v->cpu.affinity : v->cpu.logical;
    enum severity sev = v->children_growth_per_s >= S4_GROWTH_CRIT_PER_S ||
                                v->tree_end.children > 4 * cpus
                            ? SEV_CRITICAL
                            : SEV_WARNING;
    struct finding *f = add(d, "S4", "Worker processes multiply, jobs pile up", sev);
    if (!f)
        return;
    text(f->verdict, sizeof f->verdict,
         "the process tree went from %d to %d children (%+.1f/s) on %d usable CPUs; %d exited "
         "children are not reaped",
         v->tree_start.children, v->tree_end.children, v->children_growth_per_s, cpus,
         v->tree_end.zombies);
    evidence(f, "process.children_growth_per_s", v->children_growth_per_s, ">=", S4_GROWTH_PER_S);
    evidence(f, "process.children", v->tree_end.children, ">=", 0);
    evidence(f, "process.zombies", v->tree_end.zombies, ">=", S4_ZOMBIES);
    evidence(f, "cpu.usable", cpus, ">=", 0);
    if (v->tree_end.zombies)
        text(f->culprit, sizeof f->culprit,
             "process %d spawns child processes and does not wait() for them (%d zombies)",
             v->tree_end.zombie_parent, v->tree_end.zombies);
    else
        text(f->culprit, sizeof f->culprit, "the target spawns child processes");
    text(f->advice, sizeof f->advice,
         "Use a fixed-size pool (multiprocessing.Pool / ProcessPoolExecutor with max_workers "
         "about the CPU count) instead of a process per job; reap children (join(), wait()); "
         "apply back-pressure on the queue instead of spawning; maxtasksperchild to recycle "
         "leaky workers; a real broker (Redis, RabbitMQ) for work across machines.");
}

/* S6: more CPU-bound workers than physical cores available. */
static void rule_oversubscribed(const struct run_metrics *m, struct diagnosis *d)
{
    const struct system_view *v = &m->system;
    int workers = v->tree_end.cpu_bound_children +
                  (v->target_cpu_pct >= 100.0 * S6_CPU_BOUND_SHARE ? 1 : 0);
    int cores = v->cpu.physical ? v->cpu.physical : v->cpu.logical;
    if (v->cpu.affinity && v->cpu.affinity < cores)
        cores = v->cpu.affinity;
    if (v->cpu.quota_cpus > 0 && v->cpu.quota_cpus < cores)
        cores = (int)v->cpu.quota_cpus > 0 ? (int)v->cpu.quota_cpus : 1;
    /* Saturation: the workers keep half the cores busy - or, when other
     * load leaves them less than that, more of them than cores are
     * runnable at once (they queue for CPUs all the same). */
    bool saturated = v->tree_end.children_cpu_pct >= S6_SATURATION * 100.0 * cores ||
                     v->tree_end.busy_children > cores;
    if (workers <= cores || v->tree_end.cpu_bound_children == 0 || !saturated)
        return;
    struct finding *f = add(d, "S6", "More CPU-bound workers than physical cores", SEV_WARNING);
    if (!f)
        return;
    text(f->verdict, sizeof f->verdict,
         "%d CPU-bound workers share %d physical cores available to them (%d logical, "
         "affinity %d%s): they slow each other down",
         workers, cores, v->cpu.logical, v->cpu.affinity,
         v->cpu.quota_cpus > 0 ? ", cgroup quota" : "");
    evidence(f, "process.cpu_bound_workers", workers, ">", cores);
    evidence(f, "process.workers_cpu_pct", v->tree_end.children_cpu_pct, ">=",
             S6_SATURATION * 100.0 * cores);
    evidence(f, "cpu.physical", v->cpu.physical, ">=", 0);
    evidence(f, "cpu.affinity", v->cpu.affinity, ">=", 0);
    evidence(f, "cpu.steal_pct", v->cpu.steal_pct, ">=", 0);
    text(f->culprit, sizeof f->culprit, "%d CPU-bound child processes", v->tree_end.cpu_bound_children);
    text(f->advice, sizeof f->advice,
         "Size CPU-bound pools to the physical cores the process may use (%d here), not "
         "os.cpu_count() on SMT machines or in a container with a quota; pin with taskset / "
         "os.sched_setaffinity when cache locality matters; benchmark 1, 2, 4, ... workers.",
         cores);
}

/* S8: hundreds of threads; memory growth or not. */
static void rule_many_threads(const struct run_metrics *m, struct diagnosis *d)
{
    const struct system_view *v = &m->system;
    if (m->py_max < S8_THREADS)
        return;
    bool growing = v->rss_growth_kb_per_s >= S8_RSS_GROWTH_KB_S;
    uint32_t idle = 0;
    for (uint32_t i = 0; i < m->nthreads; i++)
        idle += m->threads[i].pct[TS_IO_WAIT] + m->threads[i].pct[TS_SLEEP] +
                    m->threads[i].pct[TS_LOCK_WAIT] + m->threads[i].pct[TS_IDLE_WAIT] >= 90.0;
    struct finding *f = add(d, "S8", "Hundreds of threads, memory keeps growing",
                            growing ? SEV_WARNING : SEV_INFO);
    if (!f)
        return;
    text(f->verdict, sizeof f->verdict,
         "%u Python threads (%u mostly idle in waits), thread stacks %.0f MiB reserved but "
         "%.1f MiB resident; RSS %+.0f KiB/s%s",
         m->py_max, idle, (double)v->mem_end.stacks_reserved_kb / 1024,
         (double)v->mem_end.stacks_resident_kb / 1024, v->rss_growth_kb_per_s,
         m->py_max > m->py_min ? "; the thread count grew" : "");
    evidence(f, "threads.python_max", m->py_max, ">=", S8_THREADS);
    evidence(f, "memory.rss_growth_kb_per_s", v->rss_growth_kb_per_s, ">=", S8_RSS_GROWTH_KB_S);
    evidence(f, "memory.stacks_reserved_kb", (double)v->mem_end.stacks_reserved_kb, ">=", 0);
    evidence(f, "memory.stacks_resident_kb", (double)v->mem_end.stacks_resident_kb, ">=", 0);
    text(f->culprit, sizeof f->culprit, "%u threads%s", m->py_max,
         growing ? " and a growing heap" : "");
    text(f->advice, sizeof f->advice,
         "Thread stack reservations are virtual: the resident size is what costs. Find heap "
         "growth with tracemalloc snapshots; a steady thread count means no thread leak, a "
         "growing one means threads never exit; serve I/O-bound connections with asyncio "
         "instead of a thread each; lower threading.stack_size() only after measuring the "
         "deepest stack.");
}

/* The table: each rule is one scenario's condition, severity, evidence and
 * advice; add a row to extend it. */
static void (*const RULES[])(const struct run_metrics *, struct diagnosis *) = {
    rule_loop_stalls,     /* S1 (stalls or saturation), S3 */
    rule_loop_lateness,   /* S7 */
    rule_task_growth,     /* asyncio tasks pile up */
    rule_gil_thrashing,   /* S2 */
    rule_convoy,          /* S2: the convoy effect */
    rule_lock_contention, /* S5 */
    rule_process_growth,  /* S4 */
    rule_oversubscribed,  /* S6 */
    rule_many_threads,    /* S8 */
    rule_worker_pools,    /* idle or fully occupied pools (information) */
};

/* Most severe first; at equal severity the target's own before those of
 * its subprocesses, then by scenario. */
static int by_severity(const void *a, const void *b)
{
    const struct finding *x = a, *y = b;
    if (x->severity != y->severity)
        return (x->severity < y->severity) - (x->severity > y->severity);
    if (x->leads != y->leads)
        return (int)y->leads - (int)x->leads;
    if ((x->nchildren > 0) != (y->nchildren > 0))
        return (x->nchildren > 0) - (y->nchildren > 0);
    return strcmp(x->scenario, y->scenario);
}

void diagnose_sort(struct diagnosis *d)
{
    qsort(d->findings, (size_t)d->n, sizeof d->findings[0], by_severity);
}

void diagnose(const struct run_metrics *m, struct diagnosis *d)
{
    d->n = 0;
    for (size_t i = 0; i < sizeof RULES / sizeof RULES[0]; i++)
        RULES[i](m, d);
    diagnose_sort(d);
}

struct finding *diagnose_add(struct diagnosis *d, const char *scenario, const char *title,
                             enum severity sev)
{
    return add(d, scenario, title, sev);
}

void diagnose_evidence(struct finding *f, const char *metric, double value, const char *op,
                       double threshold)
{
    evidence(f, metric, value, op, threshold);
}
