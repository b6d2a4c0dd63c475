#include "report/export_record.h"
#include "report/fleet.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "target/cgroup_ids.h"

/* Lock sites and loops per second: the most waited-on first; the server
 * bounds its series again whatever comes. */
#define EXPORT_LOCKS 16
#define EXPORT_STALLS 64

static json_object *num(double v)
{
    return json_object_new_double(v);
}

static json_object *counts(const uint64_t *v, size_t n)
{
    json_object *a = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_int64((int64_t)v[i]));
    return a;
}

json_object *export_target_info(const struct pyrt *rt, pid_t pid)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pid", json_object_new_int(pid));
    char link[64], exe[PATH_MAX];
    snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(link, exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    json_object_object_add(o, "exe", json_object_new_string(exe));
    json_object_object_add(o, "python_version", json_object_new_string(rt->version));
    json_object_object_add(o, "free_threaded", json_object_new_boolean(rt->free_threaded));
    struct cgroup_ids ids;
    cgroup_ids_of(pid, &ids);
    json_object_object_add(o, "container_id", json_object_new_string(ids.container_id));
    json_object_object_add(o, "pod_uid", json_object_new_string(ids.pod_uid));
    return o;
}

static json_object *gil_json(const struct run_metrics *m, double window_s, double per_sample_s)
{
    json_object *g = json_object_new_object();
    const struct exact_gil *x = &m->exact;
    json_object_object_add(g, "exact", json_object_new_boolean(x->valid));
    /* Exact when measured: the kernel saw every hold; sampled otherwise,
     * each sample standing for one sampling period. */
    double sampled_s = (double)m->samples_taken * per_sample_s;
    json_object_object_add(g, "held_s", num(x->valid ? x->held_pct / 100.0 * window_s
                                                     : m->held_pct / 100.0 * sampled_s));
    json_object_object_add(g, "contended_s", num(m->contended_pct / 100.0 * sampled_s));
    json_object_object_add(g, "handoffs",
                           m->handoffs_unmeasured ? NULL : json_object_new_int64((int64_t)m->handoffs));
    if (x->valid) {
        json_object_object_add(g, "acquisitions", json_object_new_int64((int64_t)x->acquisitions));
        json_object_object_add(g, "wait_count", json_object_new_int64((int64_t)x->wait.count));
        json_object_object_add(g, "wait_sum_s", num(x->wait.total_ms / 1000.0));
        json_object_object_add(g, "wait_le", counts(x->wait_le, EXACT_LE_BOUNDS + 1));
        json_object_object_add(g, "hold_count", json_object_new_int64((int64_t)x->hold.count));
        json_object_object_add(g, "hold_sum_s", num(x->hold.total_ms / 1000.0));
        json_object_object_add(g, "hold_le", counts(x->hold_le, EXACT_LE_BOUNDS + 1));
    }
    return g;
}

static const struct exact_thread *exact_of(const struct exact_gil *x, pid_t tid)
{
    for (uint32_t i = 0; x->valid && i < x->nthreads; i++)
        if (x->threads[i].tid == tid)
            return &x->threads[i];
    return NULL;
}

/* Per thread: seconds in each state (sampled) and GIL wait/held seconds
 * (exact when measured). */
static json_object *threads_json(const struct run_metrics *m, double per_sample_s, double window_s)
{
    json_object *a = json_object_new_array();
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        const struct exact_thread *xt = exact_of(&m->exact, t->tid);
        if (!t->samples && !xt)
            continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "tid", json_object_new_int(t->tid));
        json_object_object_add(o, "name",
                               json_object_new_string(t->python_name[0] ? t->python_name : t->name));
        json_object *st = json_object_new_object();
        for (int k = 0; k < TS_COUNT; k++)
            if (t->state[k])
                json_object_object_add(st, tstate_kind_key((enum tstate_kind)k),
                                       num((double)t->state[k] * per_sample_s));
        json_object_object_add(o, "states", st);
        double wait_s = xt ? xt->wait_pct / 100.0 * window_s : (double)t->state[TS_GIL_WAIT] * per_sample_s;
        double held_s = xt ? xt->held_pct / 100.0 * window_s : (double)t->state[TS_GIL_HELD] * per_sample_s;
        json_object_object_add(o, "gil_wait_s", num(wait_s));
        json_object_object_add(o, "gil_held_s", num(held_s));
        json_object_array_add(a, o);
    }
    return a;
}

static json_object *locks_json(const struct run_metrics *m, double per_sample_s)
{
    json_object *a = json_object_new_array();
    for (uint32_t k = 0; k < m->nlocks && k < EXPORT_LOCKS; k++) {
        const struct lock_metrics *l = &m->locks[m->lock_order ? m->lock_order[k] : k];
        if (!l->wait_samples)
            continue;
        char site[256] = "unknown";
        uint32_t *rank = stack_counts_ranked(&l->sites);
        const struct stack_entry *e =
            rank && l->sites.n ? stack_table_get(&m->stacks, l->sites.ids[rank[0]]) : NULL;
        free(rank);
        int py = e ? stack_python_top(e) : -1;
        if (e && e->nframes)
            stack_frame_text(&e->frames[py > 0 ? py : 0], site, sizeof site);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "site", json_object_new_string(site));
        json_object_object_add(o, "wait_s", num((double)l->wait_samples * per_sample_s));
        json_object_array_add(a, o);
    }
    return a;
}

#define TIMERS_EXPORT_PERIOD_S 0.1 /* timers are exported when sampled at 10 Hz or more */

/* The window's timer lateness by bucket (the kept values, scaled to all
 * the timers seen run when more ran than are kept) and its timeouts. */
static void loop_timers_export(const struct loop_timers *lt, json_object *o)
{
    uint64_t le[FLEET_LAG_BOUNDS + 1] = {0};
    size_t kept = lt->ran < LOOP_LAGS_KEPT ? (size_t)lt->ran : LOOP_LAGS_KEPT;
    for (size_t k = 0; k < kept; k++) {
        uint32_t b = 0;
        while (b < FLEET_LAG_BOUNDS && lt->lags[k] / 1000.0 > fleet_lag_bounds_s[b])
            b++;
        le[b]++;
    }
    json_object *a = json_object_new_array();
    for (uint32_t b = 0; b <= FLEET_LAG_BOUNDS; b++)
        json_object_array_add(a, json_object_new_int64(
                                     kept ? (int64_t)((double)le[b] * (double)lt->ran / (double)kept + 0.5) : 0));
    json_object_object_add(o, "timer_lag_le", a);
    json_object_object_add(o, "timer_lag_sum_s", num(lt->lag_sum_ms / 1000.0));
    json_object_object_add(o, "timeouts_expired", json_object_new_int64((int64_t)lt->timeouts_expired));
    json_object_object_add(o, "timeouts_expired_in_stalls",
                           json_object_new_int64((int64_t)lt->timeouts_expired_in_stalls));
}

static json_object *loops_json(const struct run_metrics *m, double per_sample_s)
{
    json_object *a = json_object_new_array();
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct loop_track *l = &m->threads[i].loop;
        if (!l->seen || (!l->samples && !(l->exact && l->nexact)))
            continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "tid", json_object_new_int(m->threads[i].tid));
        json_object_object_add(o, "busy_s", num((double)l->busy_samples * per_sample_s));
        /* exact (eBPF: each selector exit to the next entry) when measured;
         * sampled stalls are only as fine as the sampling period */
        json_object *st = json_object_new_array();
        uint32_t n = l->exact ? l->nexact : l->nstalls;
        for (uint32_t k = 0; k < n && k < EXPORT_STALLS; k++)
            json_object_array_add(st, num((l->exact ? l->exact_ms[k] : l->stalls[k].ms) / 1000.0));
        json_object_object_add(o, "stalls_exact", json_object_new_boolean(l->exact));
        json_object_object_add(o, "stalls_s", st);
        /* only as fine as the sampling: at a collector's default 0.5 Hz a
         * stall is rarely seen from inside, and the figures would mislead */
        if (per_sample_s <= TIMERS_EXPORT_PERIOD_S)
            loop_timers_export(&l->timers, o);
        json_object_object_add(o, "tasks", l->tasks.seen ? json_object_new_int64(l->tasks.last) : NULL);
        json_object_object_add(o, "tasks_per_thread", json_object_new_boolean(l->tasks.per_thread));
        json_object_array_add(a, o);
    }
    return a;
}

json_object *export_findings(const struct diagnosis *d)
{
    json_object *a = json_object_new_array();
    for (int i = 0; i < d->n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "scenario", json_object_new_string(d->findings[i].scenario));
        json_object_object_add(o, "severity",
                               json_object_new_string(severity_name(d->findings[i].severity)));
        json_object_array_add(a, o);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "findings", a);
    return o;
}

json_object *export_window(const struct run_metrics *m, double window_s)
{
    json_object *o = json_object_new_object();
    /* A window ends on time, samples come at the sampling rate: a window
     * may hold none (serve samples every 2 s, sends every second). Each
     * sample stands for one period, so the sums over windows stay right. */
    double per_sample_s = m->sample_period_s;
    json_object_object_add(o, "window_s", num(window_s));
    json_object_object_add(o, "samples", json_object_new_int64((int64_t)m->samples_taken));
    json_object *errors = json_object_new_object();
    json_object_object_add(errors, "missed_tick", json_object_new_int64((int64_t)m->missed));
    json_object_object_add(errors, "gil_unreadable", json_object_new_int64((int64_t)m->gil_unread));
    json_object_object_add(o, "errors", errors);
    /* the gauges only from a window that saw the process (the receiver
     * keeps the last values) */
    if (m->samples_taken) {
        json_object_object_add(o, "python_threads", json_object_new_int64(m->py_max));
        json_object_object_add(o, "os_threads", json_object_new_int64(m->os_max));
        /* A free-threaded build runs without a GIL unless it was turned on. */
        json_object_object_add(o, "gil_enabled",
                               json_object_new_boolean(!(m->free_threaded && m->gil_disabled_samples)));
    }
    json_object_object_add(o, "gil", gil_json(m, window_s, per_sample_s));
    json_object_object_add(o, "threads", threads_json(m, per_sample_s, window_s));
    json_object_object_add(o, "locks", locks_json(m, per_sample_s));
    json_object_object_add(o, "loops", loops_json(m, per_sample_s));
    return o;
}
