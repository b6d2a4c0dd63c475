#include <inttypes.h>
#include <stdlib.h>

#include "analysis/exact_check.h"
#include "python/classify.h"
#include "report/blame_report.h"
#include "report/common.h"
#include "report/sample.h"

/* "meanwhile" lines: activities at least this much more frequent while the
 * lock is waited on than over the whole run. */
#define LOCK_MEANWHILE_MIN_EXCESS 10.0
#define LOCK_MEANWHILE_JSON_MAX 10

/* States whose top stacks are worth showing per thread. */
static const enum tstate_kind SHOWN_STATES[] = {TS_GIL_WAIT, TS_GIL_HELD, TS_LOCK_WAIT,
                                                TS_IDLE_WAIT, TS_NOGIL_RUNNING, TS_IO_WAIT};

static const struct stack_entry *stack(const struct sample_report *r, uint32_t id)
{
    return stack_table_get(&r->m->stacks, id);
}

static void text_run(FILE *out, const struct sample_report *r)
{
    const struct run_metrics *m = r->m;
    fprintf(out, "Process %d: %s\n", r->pid, r->cmdline);
    report_python_line(out, r->rt);
    fprintf(out, "\nRun\n");
    fprintf(out, "  duration     %.2f s%s%s\n", m->duration_s,
            m->interrupted ? " (ended early by signal)" : "",
            m->process_execd    ? " (the process replaced its program (exec): the report covers "
                                  "what was seen before)"
            : m->process_exited ? " (the process exited: the report covers what was seen)"
                                : "");
    fprintf(out, "  samples      %" PRIu64 " requested, %" PRIu64 " taken (%.0f Hz of %.0f Hz)\n",
            m->samples_requested, m->samples_taken, m->rate_hz, m->requested_rate_hz);
    if (m->behind)
        fprintf(out,
                "  WARNING      the sampler fell behind: %" PRIu64 " ticks missed; figures rest "
                "on fewer samples (lower -r, or give gilprobe a CPU)\n",
                m->missed);
    fprintf(out, "  threads      Python %u-%u (+%u started, %u exited), OS %u-%u (+%u, -%u)\n",
            m->py_min, m->py_max, m->py_created, m->py_exited, m->os_min, m->os_max,
            m->os_created, m->os_exited);
    fprintf(out, "  sampler      %.1f us CPU per thread-sample (%.3f s CPU)\n",
            r->cost->us_per_thread_sample, r->cost->cpu_s);
    if (r->cost->bpf_samples)
        fprintf(out, "  reads        one BPF program run per sample in %.0f%% of samples (%s); "
                "%.0f%% of thread-samples found the thread had not run since the last: not "
                "read again\n",
                100.0 * (double)r->cost->bpf_samples / (double)(m->samples_taken ? m->samples_taken : 1),
                r->cost->bpf_why,
                100.0 * (double)r->cost->still_thread_samples /
                    (double)(r->cost->thread_samples ? r->cost->thread_samples : 1));
    else
        fprintf(out, "  reads        process_vm_readv and /proc per thread; BPF sample reader not "
                "used: %s\n", r->cost->bpf_why);
    const struct native_pause_stats *np = &r->cost->native_pause;
    if (r->cost->native) {
        fprintf(out,
                "  native       %" PRIu64 " thread stops for C stacks (%" PRIu64 " failed): the "
                "target was paused %.1f ms in all; per thread stop median %.0f us, p99 %.0f us, "
                "worst %.0f us; worst sample %.0f us\n",
                np->unwinds, np->failed, np->total_ms, np->p50_us, np->p99_us, np->max_us,
                np->sample_max_us);
        fprintf(out, "  native       of which stopped-and-unwinding (from the stop seen): "
                "median %.0f us, p99 %.0f us, worst %.0f us\n",
                np->stopped_p50_us, np->stopped_p99_us, np->stopped_max_us);
        fprintf(out, "  native state %" PRIu64 " of %" PRIu64 " thread samples whose C stack "
                "named a state disagreed with the syscall-based one\n",
                np->disagree, np->compared);
    }
}

static void text_gil(FILE *out, const struct sample_report *r)
{
    const struct run_metrics *m = r->m;
    if (m->free_threaded) {
        fprintf(out, "\nGIL: free-threaded build (Python %s): the GIL was off in %.1f%% of "
                "samples\n", r->rt->version, m->gil_disabled_pct);
        if (!m->gil_samples) {
            fprintf(out, "  no GIL figures: threads run Python in parallel (see their states)\n");
            return;
        }
        fprintf(out, "  it was turned on at run time (an extension module without free-threading "
                "support, or PYTHON_GIL=1); the figures below cover those samples\n");
    }
    fprintf(out, "\nGIL (sampled every %.3g ms)\n", m->period_ms);
    fprintf(out, "  held         %5.1f%% of wall time\n", m->held_pct);
    fprintf(out, "  contended    %5.1f%% of wall time with >=1 waiter (mean %.2f, max %u waiters)\n",
            m->contended_pct, m->waiters_mean, m->waiters_max);
    if (m->handoffs_unmeasured) {
        fprintf(out, "  hand-offs    not measured (%s)\n", REPORT_UNPUBLISHED);
        fprintf(out, "  switch interval not measured (%s)\n", REPORT_UNPUBLISHED);
        return;
    }
    fprintf(out, "  hand-offs    %.1f/s (%" PRIu64 " in the run)", m->handoffs_per_s, m->handoffs);
    if (m->handoffs_per_cpu_s > 0)
        fprintf(out, ", %.1f per CPU-second", m->handoffs_per_cpu_s);
    if (m->handoffs)
        fprintf(out, ", mean hold %.3g ms per hand-off\n", m->mean_hold_ms);
    else
        fprintf(out, "\n");
    fprintf(out, "  switch interval %.3g ms\n", (double)m->interval_us / 1000.0);
}

static const char *name_of(const struct run_metrics *m, pid_t tid)
{
    for (uint32_t i = 0; i < m->nthreads; i++)
        if (m->threads[i].tid == tid)
            return m->threads[i].display;
    return "?";
}

static void text_dist(FILE *out, const char *label, const struct exact_dist *d)
{
    fprintf(out,
            "  %-12s mean %.3g ms, p50 %.3g, p90 %.3g, p99 %.3g, max %.3g ms (%" PRIu64 ")\n",
            label, d->mean_ms, d->p50_ms, d->p90_ms, d->p99_ms, d->max_ms, d->count);
}

/* One line: whether the exact figures agree with the sampled ones. */
static void text_exact_check(FILE *out, const struct run_metrics *m)
{
    const struct exact_check *c = &m->exact.check;
    if (!c->done)
        return;
    char threads[200] = "";
    if (c->threads_compared)
        snprintf(threads, sizeof threads, "; GIL wait of %u threads, the furthest %d %.1f%% vs "
                 "%.1f%% (tolerance %.1f)", c->threads_compared, c->worst_tid,
                 c->worst_exact_wait_pct, c->worst_sampled_wait_pct, c->worst_tolerance);
    char missed[200] = "";
    if (c->sampler_missed_pct > EXACT_CHECK_MISSED_NOTE_PCT)
        snprintf(missed, sizeof missed, "; the sampler, short of CPU, missed %.0f%% of its ticks, "
                 "mostly while the target ran: the sampled shares lean low", c->sampler_missed_pct);
    fprintf(out, "  %s  held %.1f%% exact vs %.1f%% sampled (tolerance %.1f)%s%s%s\n",
            c->consistent ? "checked:" : "INCONSISTENT:", m->exact.held_pct, c->sampled_held_pct,
            c->held_tolerance, threads, missed,
            c->consistent ? ""
                          : " - this mode missed GIL acquisitions or releases here: trust the "
                            "sampled figures, not the exact ones below");
}

static void text_exact(FILE *out, const struct sample_report *r)
{
    const struct run_metrics *m = r->m;
    const struct exact_gil *x = &m->exact;
    if (!x->valid) {
        fprintf(out, "\nGIL, exact: not measured (%s); the figures above are sampled\n",
                m->bpf_note);
        return;
    }
    fprintf(out, "\nGIL, exact (eBPF: %s; over %.2f s)\n", x->mode, x->window_s);
    text_exact_check(out, m);
    fprintf(out, "  held         %5.1f%% of wall time, %" PRIu64 " acquisitions\n", x->held_pct,
            x->acquisitions);
    text_dist(out, "hold", &x->hold);
    text_dist(out, "wait", &x->wait);
    fprintf(out, "  %-8s %-16s %6s %6s %6s  %-27s %s\n", "TID", "NAME", "ACQ", "HELD%", "WAIT%",
            "HOLD p50/p90/p99/max ms", "WAIT p50/p90/p99/max ms");
    for (uint32_t i = 0; i < x->nthreads; i++) {
        const struct exact_thread *t = &x->threads[i];
        char hold[64], wait[64];
        snprintf(hold, sizeof hold, "%.3g/%.3g/%.3g/%.3g", t->hold.p50_ms, t->hold.p90_ms,
                 t->hold.p99_ms, t->hold.max_ms);
        snprintf(wait, sizeof wait, "%.3g/%.3g/%.3g/%.3g", t->wait.p50_ms, t->wait.p90_ms,
                 t->wait.p99_ms, t->wait.max_ms);
        fprintf(out, "  %-8d %-16.16s %6" PRIu64 " %6.1f %6.1f  %-27s %s\n", t->tid,
                name_of(m, t->tid), t->acquisitions, t->held_pct, t->wait_pct, hold, wait);
    }
    if (x->nlongest)
        fprintf(out, "  longest holds (of %" PRIu64 " >= %.3g ms), with the stack that held the GIL:\n",
                x->long_hold_events, x->long_hold_threshold_ms);
    for (uint32_t i = 0; i < x->nlongest; i++) {
        const struct stack_entry *e = stack(r, x->longest[i].stack);
        char frame[1024] = "(no Python frames)", caller[1024] = "";
        if (e && e->nframes) {
            stack_frame_text(&e->frames[0], frame, sizeof frame);
            if (e->nframes > 1)
                stack_frame_text(&e->frames[1], caller, sizeof caller);
        }
        fprintf(out, "    %8.2f ms  %d %s: %s%s%s\n", x->longest[i].ms, x->longest[i].tid,
                name_of(m, x->longest[i].tid), frame, caller[0] ? "  <- " : "", caller);
    }
}

static void text_threads(FILE *out, const struct sample_report *r)
{
    const struct run_metrics *m = r->m;
    fprintf(out, "\nThreads (sorted by GIL wait; %% of the thread's samples)\n");
    fprintf(out, "  %-8s %-24s %6s %6s %6s %6s %6s %6s %6s %6s %8s  %s\n", "TID", "NAME", "HELD",
            "GILW", "LOCK", "IDLE", "IO", "SLEEP", "NOGIL", "CPU%", "INVCS/s",
            "GIL WAIT p50/p99/max ms");
    for (uint32_t k = 0; k < m->nthreads; k++) {
        const struct thread_metrics *t = &m->threads[m->thread_order[k]];
        char waits[64] = "-";
        if (t->wait.count)
            snprintf(waits, sizeof waits, "%.1f/%.1f/%.1f (%" PRIu64 ")", t->wait.p50,
                     t->wait.p99, t->wait.max, t->wait.count);
        fprintf(out, "  %-8d %-24.24s %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %8.1f  %s%s\n",
                t->tid, t->display, t->pct[TS_GIL_HELD], t->pct[TS_GIL_WAIT], t->pct[TS_LOCK_WAIT],
                t->pct[TS_IDLE_WAIT], t->pct[TS_IO_WAIT], t->pct[TS_SLEEP], t->pct[TS_NOGIL_RUNNING], t->cpu_pct,
                t->ivcs_per_s, waits, t->exited ? "  (exited)" : "");
    }
    fprintf(out, "\n  Where threads are, by state (top stack's innermost frames):\n");
    for (uint32_t k = 0; k < m->nthreads; k++) {
        const struct thread_metrics *t = &m->threads[m->thread_order[k]];
        bool header = false;
        for (size_t s = 0; s < sizeof SHOWN_STATES / sizeof SHOWN_STATES[0]; s++) {
            enum tstate_kind kind = SHOWN_STATES[s];
            const struct stack_counts *c = &t->stacks[kind];
            if (t->pct[kind] < 5.0 || c->n == 0)
                continue;
            uint32_t *rank = stack_counts_ranked(c);
            if (!rank)
                continue;
            const struct stack_entry *e = stack(r, c->ids[rank[0]]);
            if (!header)
                fprintf(out, "  %d %s\n", t->tid, t->display);
            header = true;
            char frame[1024] = "(no Python frames)", caller[1024] = "";
            if (e && e->nframes) {
                stack_frame_text(&e->frames[0], frame, sizeof frame);
                if (e->nframes > 1)
                    stack_frame_text(&e->frames[1], caller, sizeof caller);
            }
            fprintf(out, "    %-24s %5.1f%%  %s%s%s\n", tstate_kind_label(kind),
                    100.0 * (double)c->counts[rank[0]] / (double)t->state[kind], frame,
                    caller[0] ? "  <- " : "", caller);
            free(rank);
        }
    }
    report_blame_text(out, m);
}

static void format_culprit(const struct sample_report *r, const struct loop_culprit *c, char *buf,
                           size_t sz)
{
    char frame[1024];
    stack_site_text(stack(r, c->frame), frame, sizeof frame);
    const char *sys = c->syscall >= 0 ? syscall_name(c->syscall) : NULL;
    char ctx[1024];
    loops_context_text(&r->m->stacks, c, ctx, sizeof ctx);
    const char *sep = ctx[0] ? "\n                   " : "";
    if (c->on_cpu_samples >= c->blocked_samples)
        snprintf(buf, sz, "%s, on CPU%s%s", frame, sep, ctx);
    else if (sys)
        snprintf(buf, sz, "%s, blocked in %s%s%s", frame, sys, sep, ctx);
    else
        snprintf(buf, sz, "%s, blocked%s%s", frame, sep, ctx);
}

static void text_loops(FILE *out, const struct sample_report *r)
{
    const struct run_metrics *m = r->m;
    bool header = false;
    for (uint32_t k = 0; k < m->nthreads; k++) {
        const struct thread_metrics *t = &m->threads[m->thread_order[k]];
        const struct loop_track *l = &t->loop;
        if (!l->seen)
            continue;
        if (!header)
            fprintf(out, "\nEvent loops (asyncio; sampled every %.3g ms: stalls shorter than a "
                         "sample go unseen; stall = out of the selector >= %.0f ms)\n",
                    m->period_ms, m->stall_ms);
        header = true;
        fprintf(out, "  %d %s: busy %.1f%%, idle %.1f%%; %u stall%s", t->tid, t->display, l->busy_pct,
                100.0 - l->busy_pct, l->nstalls, l->nstalls == 1 ? "" : "s");
        if (l->nstalls)
            fprintf(out, " (p50 %.0f, p99 %.0f, max %.0f ms; %.1f%% of the time stalled)",
                    l->stall_p50_ms, l->stall_p99_ms, l->stall_max_ms, l->stalled_pct);
        fprintf(out, "\n");
        const struct loop_timers *lt = &l->timers;
        if (l->timer_lag_measured)
            fprintf(out, "    timers: %llu seen run, %llu late (p50 %.1f, p99 %.0f, max %.0f ms)\n",
                    (unsigned long long)lt->ran, (unsigned long long)lt->late, l->timer_lag_p50_ms,
                    l->timer_lag_p99_ms, l->timer_lag_max_ms);
        else if (l->nstalls)
            fprintf(out, "    timer lateness from stalls: mean %.1f ms, worst %.0f ms\n",
                    l->timer_lag_mean_ms, l->timer_lag_max_ms);
        const struct loop_tasks *tk = &l->tasks;
        if (tk->seen && tk->n)
            fprintf(out, "    tasks%s: %u at first, %u at the end, at most %u (%+.1f/s)%s\n",
                    tk->per_thread ? "" : " (the process's)", tk->v[0].n, tk->last, tk->max,
                    tk->growth_per_s, tk->growing ? ": growing" : "");
        if (lt->timeouts_seen)
            fprintf(out, "    timeouts (wait_for/timeout): %llu seen, up to %u pending; %llu expired "
                         "late, %llu of them in stalls\n",
                    (unsigned long long)lt->timeouts_seen, lt->timeouts_pending_max,
                    (unsigned long long)lt->timeouts_expired,
                    (unsigned long long)lt->timeouts_expired_in_stalls);
        if (l->exact && l->nexact)
            fprintf(out, "    exact (eBPF, selector exit to entry): %u stalls, p50 %.1f, p99 %.1f, "
                         "max %.1f ms\n",
                    l->nexact, l->exact_p50_ms, l->exact_p99_ms, l->exact_max_ms);
        else if (l->exact)
            fprintf(out, "    exact (eBPF, selector exit to entry): no stall\n");
        else
            fprintf(out, "    exact stall timing not measured: %s\n", m->loop_bpf_note);
        for (uint32_t c = 0; c < l->nculprits && c < 3; c++) {
            char what[2400];
            format_culprit(r, &l->culprits[c], what, sizeof what);
            fprintf(out, "    culprit %5.1f%%  %s\n", l->culprits[c].share_pct, what);
        }
        if (l->busy_samples)
            fprintf(out, "    busy time (longest stretch %.0f ms), on CPU by function:\n", l->busy_max_ms);
        for (uint32_t c = 0; c < l->nbusy_culprits && c < 3; c++) {
            char frame[1024];
            if (!l->busy_culprits[c].on_cpu_samples)
                break;
            stack_site_text(stack(r, l->busy_culprits[c].frame), frame, sizeof frame);
            fprintf(out, "      %5.1f%%  %s\n", l->busy_culprits[c].share_pct, frame);
        }
    }
}

static void text_locks(FILE *out, const struct sample_report *r)
{
    const struct run_metrics *m = r->m;
    if (!m->nlocks)
        return;
    fprintf(out, "\nLocks (threads blocked on a futex other than the GIL, by address)\n");
    for (uint32_t k = 0; k < m->nlocks; k++) {
        const struct lock_metrics *l = &m->locks[m->lock_order[k]];
        fprintf(out, "  0x%" PRIx64 ": %u waiting thread%s, %.1f%% of their time;", l->addr,
                l->nwaiters, l->nwaiters == 1 ? "" : "s", l->wait_pct);
        for (uint32_t w = 0; w < l->nwaiters && w < 8; w++)
            fprintf(out, " %d", m->threads[l->waiters[w]].tid);
        fprintf(out, "\n");
        uint32_t *rank = stack_counts_ranked(&l->sites);
        if (rank && l->sites.n) {
            char frame[1024];
            stack_site_text(stack(r, l->sites.ids[rank[0]]), frame, sizeof frame);
            fprintf(out, "    they wait at   %s\n", frame);
        }
        free(rank);
        /* What the others did more than usual while it was waited on (the
         * holder, typically); when nothing stands out (e.g. the lock was
         * waited on all the time), what they were seen doing. */
        bool correlated = l->nact && l->act[l->act_order[0]].excess_pct >= LOCK_MEANWHILE_MIN_EXCESS;
        for (uint32_t k2 = 0, shown = 0; k2 < l->nact && shown < 3; k2++) {
            const struct activity *a = &l->act[l->act_order[k2]];
            if (correlated && a->excess_pct < LOCK_MEANWHILE_MIN_EXCESS)
                break;
            const struct thread_metrics *t = &m->threads[a->thread];
            char frame[1024];
            stack_site_text(stack(r, a->stack), frame, sizeof frame);
            if (correlated)
                fprintf(out, "    meanwhile      %d %s %s %.0f%% of the time (%.0f%% otherwise): %s\n",
                        t->tid, t->display, tstate_kind_label(a->kind), a->share_pct,
                        a->baseline_pct, frame);
            else
                fprintf(out, "    seen meanwhile %d %s %s %.0f%%: %s\n", t->tid, t->display,
                        tstate_kind_label(a->kind), a->share_pct, frame);
            shown++;
        }
    }
}

static void text_system(FILE *out, const struct sample_report *r)
{
    const struct system_view *v = &r->m->system;
    fprintf(out, "\nProcess and system\n");
    fprintf(out, "  CPUs         %d logical, %d physical cores; the process may use %d", v->cpu.logical,
            v->cpu.physical, v->cpu.affinity);
    if (v->cpu.quota_cpus > 0)
        fprintf(out, ", cgroup quota %.2f CPUs", v->cpu.quota_cpus);
    fprintf(out, "; steal %.1f%%; runnable tasks %d -> %d\n", v->cpu.steal_pct,
            v->cpu.running_start, v->cpu.running_end);
    fprintf(out, "  children     %d -> %d (%+.1f/s), %d zombie%s", v->tree_start.children,
            v->tree_end.children, v->children_growth_per_s, v->tree_end.zombies,
            v->tree_end.zombies == 1 ? "" : "s");
    if (v->tree_end.zombie_parent)
        fprintf(out, " (not reaped by %d)", v->tree_end.zombie_parent);
    fprintf(out, ", %d Python, %d running\n", v->tree_end.python_children,
            v->tree_end.busy_children);
    fprintf(out, "  memory       RSS %.1f -> %.1f MiB (%+.0f KiB/s); %d thread stacks: %.1f MiB "
                 "reserved, %.1f MiB resident\n",
            (double)v->mem_start.rss_kb / 1024, (double)v->mem_end.rss_kb / 1024,
            v->rss_growth_kb_per_s, v->mem_end.stacks, (double)v->mem_end.stacks_reserved_kb / 1024,
            (double)v->mem_end.stacks_resident_kb / 1024);
}

static double jget(struct json_object *o, const char *a, const char *b)
{
    struct json_object *x, *y;
    if (!json_object_object_get_ex(o, a, &x) || !json_object_object_get_ex(x, b, &y))
        return 0;
    return json_object_get_double(y);
}

static void text_subprocesses(FILE *out, const struct sample_report *r)
{
    if (!r->nchildren)
        return;
    fprintf(out, "\nSubprocesses (each Python child sampled by its own gilprobe)\n");
    for (int i = 0; i < r->nchildren; i++) {
        struct json_object *c = r->children[i], *x, *f0 = NULL;
        if (!c) {
            fprintf(out, "  (a child could not be sampled)\n");
            continue;
        }
        const char *cmd = json_object_object_get_ex(c, "cmdline", &x) ? json_object_get_string(x) : "";
        int pid = json_object_object_get_ex(c, "pid", &x) ? json_object_get_int(x) : 0;
        fprintf(out, "  %d %.60s: GIL held %.1f%%, contended %.1f%%", pid, cmd,
                jget(c, "gil", "held_pct"), jget(c, "gil", "contended_pct"));
        if (json_object_object_get_ex(c, "findings", &x) && json_object_array_length(x) > 0)
            f0 = json_object_array_get_idx(x, 0);
        struct json_object *sc, *sev, *title;
        if (f0 && json_object_object_get_ex(f0, "scenario", &sc) &&
            json_object_object_get_ex(f0, "severity", &sev) &&
            json_object_object_get_ex(f0, "title", &title))
            fprintf(out, "; [%s] %s %s\n", json_object_get_string(sev),
                    json_object_get_string(sc), json_object_get_string(title));
        else
            fprintf(out, "; no known contention pattern\n");
    }
}

static void text_diagnosis(FILE *out, const struct sample_report *r)
{
    const struct diagnosis *d = r->diag;
    const struct run_metrics *m = r->m;
    fprintf(out, "\nDiagnosis\n");
    if (!d || d->n == 0) {
        fprintf(out, "  no known contention pattern found (GIL held %.1f%%, contended %.1f%%, "
                     "%.0f hand-offs/s)\n",
                m->held_pct, m->contended_pct, m->handoffs_per_s);
        return;
    }
    for (int i = 0; i < d->n; i++) {
        const struct finding *f = &d->findings[i];
        fprintf(out, "  [%s] %s %s", severity_name(f->severity), f->scenario, f->title);
        if (f->nchildren)
            fprintf(out, "  (in %d of %d subprocesses)", f->nchildren, f->children_sampled);
        fprintf(out, "\n");
        fprintf(out, "    what:     %s\n", f->verdict);
        fprintf(out, "    evidence:");
        for (int e = 0; e < f->nevidence; e++)
            fprintf(out, "%s %s=%.4g (%s %.4g)", e ? "," : "", f->evidence[e].metric,
                    f->evidence[e].value, f->evidence[e].op, f->evidence[e].threshold);
        fprintf(out, "\n    culprit:  %s\n", f->culprit);
        fprintf(out, "    do:       %s\n", f->advice);
    }
}

void report_sample_text(FILE *out, const struct sample_report *r)
{
    text_run(out, r);
    text_gil(out, r);
    text_exact(out, r);
    text_threads(out, r);
    text_loops(out, r);
    text_locks(out, r);
    text_system(out, r);
    text_subprocesses(out, r);
    text_diagnosis(out, r);
}

static json_object *jd(double v)
{
    return json_object_new_double(v);
}

static json_object *stack_json(const struct sample_report *r, uint32_t id)
{
    const struct stack_entry *e = stack(r, id);
    return e ? report_json_frames(e->frames, e->nframes) : json_object_new_array();
}

static json_object *top_stacks_json(const struct sample_report *r, const struct thread_metrics *t)
{
    json_object *o = json_object_new_object();
    for (int kind = 0; kind < TS_COUNT; kind++) {
        const struct stack_counts *c = &t->stacks[kind];
        if (!c->n)
            continue;
        uint32_t *rank = stack_counts_ranked(c);
        json_object *arr = json_object_new_array();
        for (uint32_t i = 0; rank && i < c->n && i < REPORT_TOP_STACKS; i++) {
            json_object *s = json_object_new_object();
            json_object_object_add(s, "share_pct",
                                   jd(100.0 * (double)c->counts[rank[i]] / (double)t->state[kind]));
            json_object_object_add(s, "samples", json_object_new_int64((int64_t)c->counts[rank[i]]));
            json_object_object_add(s, "frames", stack_json(r, c->ids[rank[i]]));
            json_object_array_add(arr, s);
        }
        free(rank);
        json_object_object_add(o, tstate_kind_key(kind), arr);
    }
    return o;
}

static json_object *thread_json(const struct sample_report *r, const struct thread_metrics *t)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tid", json_object_new_int(t->tid));
    json_object_object_add(o, "name", json_object_new_string(t->name));
    report_json_python_name(o, t->python_name, t->python_name_why);
    json_object_object_add(o, "samples", json_object_new_int64((int64_t)t->samples));
    json_object_object_add(o, "exited", json_object_new_boolean(t->exited));
    for (int kind = 0; kind < TS_COUNT; kind++) {
        char key[32];
        snprintf(key, sizeof key, "%s_pct", tstate_kind_key(kind));
        json_object_object_add(o, key, jd(t->pct[kind]));
    }
    json_object_object_add(o, "cpu_pct", t->cpu_valid ? jd(t->cpu_pct) : NULL);
    json_object_object_add(o, "involuntary_ctxsw_per_s", t->cpu_valid ? jd(t->ivcs_per_s) : NULL);
    json_object *w = json_object_new_object();
    json_object_object_add(w, "count", json_object_new_int64((int64_t)t->wait.count));
    json_object_object_add(w, "p50_ms", t->wait.count ? jd(t->wait.p50) : NULL);
    json_object_object_add(w, "p99_ms", t->wait.count ? jd(t->wait.p99) : NULL);
    json_object_object_add(w, "max_ms", t->wait.count ? jd(t->wait.max) : NULL);
    json_object_object_add(o, "gil_wait_stretches", w);
    report_thread_blame_json(o, r->m, t);
    if (!r->figures_only)
        json_object_object_add(o, "top_stacks", top_stacks_json(r, t));
    return o;
}

static json_object *lock_json(const struct sample_report *r, const struct lock_metrics *l)
{
    const struct run_metrics *m = r->m;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "address", report_json_hex(l->addr));
    json_object_object_add(o, "waiters", json_object_new_int((int)l->nwaiters));
    json_object *tids = json_object_new_array();
    for (uint32_t w = 0; w < l->nwaiters; w++)
        json_object_array_add(tids, json_object_new_int(m->threads[l->waiters[w]].tid));
    json_object_object_add(o, "waiter_tids", tids);
    json_object_object_add(o, "wait_pct", jd(l->wait_pct));
    uint32_t *rank = stack_counts_ranked(&l->sites);
    const struct stack_entry *site = rank && l->sites.n ? stack(r, l->sites.ids[rank[0]]) : NULL;
    json_object_object_add(o, "wait_site", report_json_site(site));
    json_object_object_add(o, "wait_stack", site && !r->figures_only
                                                ? report_json_frames(site->frames, site->nframes)
                                                : NULL);
    free(rank);
    json_object *act = json_object_new_array();
    for (uint32_t a = 0; a < l->nact && a < LOCK_MEANWHILE_JSON_MAX && !r->figures_only; a++) {
        const struct activity *x = &l->act[l->act_order[a]];
        json_object *j = json_object_new_object();
        json_object_object_add(j, "tid", json_object_new_int(m->threads[x->thread].tid));
        json_object_object_add(j, "name", json_object_new_string(m->threads[x->thread].name));
        json_object_object_add(j, "state", json_object_new_string(tstate_kind_key(x->kind)));
        json_object_object_add(j, "share_pct", jd(x->share_pct));
        json_object_object_add(j, "baseline_pct", jd(x->baseline_pct));
        json_object_object_add(j, "excess_pct", jd(x->excess_pct));
        json_object_object_add(j, "frames", stack_json(r, x->stack));
        json_object_array_add(act, j);
    }
    json_object_object_add(o, "meanwhile", act);
    return o;
}

static json_object *dist_json(const struct exact_dist *d)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "count", json_object_new_int64((int64_t)d->count));
    json_object_object_add(o, "total_ms", jd(d->total_ms));
    json_object_object_add(o, "mean_ms", jd(d->mean_ms));
    json_object_object_add(o, "p50_ms", jd(d->p50_ms));
    json_object_object_add(o, "p90_ms", jd(d->p90_ms));
    json_object_object_add(o, "p99_ms", jd(d->p99_ms));
    json_object_object_add(o, "max_ms", jd(d->max_ms));
    return o;
}

static json_object *exact_json(const struct sample_report *r)
{
    const struct run_metrics *m = r->m;
    const struct exact_gil *x = &m->exact;
    if (!x->valid)
        return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "source", json_object_new_string("exact"));
    json_object_object_add(o, "mode", json_object_new_string(x->mode));
    json_object_object_add(o, "probes", json_object_new_int(x->probes));
    json_object_object_add(o, "window_s", jd(x->window_s));
    json_object_object_add(o, "held_pct", jd(x->held_pct));
    const struct exact_check *c = &x->check;
    json_object_object_add(o, "consistent", c->done ? json_object_new_boolean(c->consistent) : NULL);
    json_object *ck = NULL;
    if (c->done) {
        ck = json_object_new_object();
        json_object_object_add(ck, "exact_held_pct", jd(x->held_pct));
        json_object_object_add(ck, "sampled_held_pct", jd(c->sampled_held_pct));
        json_object_object_add(ck, "held_diff", jd(c->held_diff));
        json_object_object_add(ck, "held_tolerance", jd(c->held_tolerance));
        json_object_object_add(ck, "sampler_missed_pct", jd(c->sampler_missed_pct));
        json_object_object_add(ck, "threads_compared", json_object_new_int((int)c->threads_compared));
        json_object *w = NULL;
        if (c->threads_compared) {
            w = json_object_new_object();
            json_object_object_add(w, "tid", json_object_new_int(c->worst_tid));
            json_object_object_add(w, "exact_wait_pct", jd(c->worst_exact_wait_pct));
            json_object_object_add(w, "sampled_wait_pct", jd(c->worst_sampled_wait_pct));
            json_object_object_add(w, "diff", jd(c->worst_wait_diff));
            json_object_object_add(w, "tolerance", jd(c->worst_tolerance));
        }
        json_object_object_add(ck, "furthest_thread", w);
    }
    json_object_object_add(o, "check", ck);
    json_object_object_add(o, "acquisitions", json_object_new_int64((int64_t)x->acquisitions));
    json_object_object_add(o, "hold", dist_json(&x->hold));
    json_object_object_add(o, "wait", dist_json(&x->wait));
    json_object *threads = json_object_new_array();
    for (uint32_t i = 0; i < x->nthreads && !r->figures_only; i++) {
        const struct exact_thread *t = &x->threads[i];
        json_object *j = json_object_new_object();
        json_object_object_add(j, "tid", json_object_new_int(t->tid));
        json_object_object_add(j, "name", json_object_new_string(name_of(m, t->tid)));
        json_object_object_add(j, "acquisitions", json_object_new_int64((int64_t)t->acquisitions));
        json_object_object_add(j, "wakeups", json_object_new_int64((int64_t)t->wakeups));
        json_object_object_add(j, "held_pct", jd(t->held_pct));
        json_object_object_add(j, "wait_pct", jd(t->wait_pct));
        json_object_object_add(j, "hold", dist_json(&t->hold));
        json_object_object_add(j, "wait", dist_json(&t->wait));
        json_object_array_add(threads, j);
    }
    json_object_object_add(o, "threads", threads);
    json_object_object_add(o, "long_hold_threshold_ms", jd(x->long_hold_threshold_ms));
    json_object *bl = NULL;
    if (x->blame_valid) {
        bl = json_object_new_object();
        json_object_object_add(bl, "holds_recorded_per_s", jd(x->blame_holds_per_s));
        json_object_object_add(bl, "pairs_lost", json_object_new_int64((int64_t)x->blame_lost));
    }
    json_object_object_add(o, "blame", bl);
    json_object_object_add(o, "long_holds", json_object_new_int64((int64_t)x->long_hold_events));
    json_object *longest = json_object_new_array();
    for (uint32_t i = 0; i < x->nlongest; i++) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "tid", json_object_new_int(x->longest[i].tid));
        json_object_object_add(j, "name", json_object_new_string(name_of(m, x->longest[i].tid)));
        json_object_object_add(j, "hold_ms", jd(x->longest[i].ms));
        json_object_object_add(j, "frames", stack_json(r, x->longest[i].stack));
        json_object_array_add(longest, j);
    }
    json_object_object_add(o, "longest_holds", longest);
    return o;
}


#define TIMERS_UNREAD                                                                             \
    "the loop's timer heap was not read: uvloop keeps its timers in libuv, not read; another " \
    "loop is found by its thread's BaseEventLoop._run_once frame (3.14+: its thread state)"

/* The loop's task count over time: null when never counted. */
static json_object *loop_tasks_json(const struct sample_report *r, const struct loop_tasks *lt)
{
    if (!lt->seen)
        return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "scope", json_object_new_string(lt->per_thread ? "thread" : "process"));
    json_object_object_add(o, "first", json_object_new_int((int)(lt->n ? lt->v[0].n : lt->last)));
    json_object_object_add(o, "last", json_object_new_int((int)lt->last));
    json_object_object_add(o, "max", json_object_new_int((int)lt->max));
    json_object_object_add(o, "growth_per_s", jd(lt->growth_per_s));
    json_object_object_add(o, "fit_r2", jd(lt->fit_r2));
    json_object_object_add(o, "growing", json_object_new_boolean(lt->growing));
    json_object *series = json_object_new_array();
    for (uint32_t i = 0; i < lt->n; i++) {
        json_object *p = json_object_new_array();
        json_object_array_add(p, jd(lt->v[i].t));
        json_object_array_add(p, json_object_new_int((int)lt->v[i].n));
        json_object_array_add(series, p);
    }
    json_object_object_add(o, "series", series);
    json_object *groups = json_object_new_array();
    for (uint32_t i = 0; i < lt->ngroups; i++) {
        json_object *j = lt->groups[i].frame ? report_json_site(stack(r, lt->groups[i].frame)) : NULL;
        if (!j)
            j = json_object_new_object();
        json_object_object_add(j, "count", json_object_new_int((int)lt->groups[i].count));
        json_object_array_add(groups, j);
    }
    json_object_object_add(o, "by_coroutine", groups);
    return o;
}

/* What the loop's timers showed: null when its heap was never read. */
static json_object *loop_timers_json(const struct loop_timers *lt)
{
    if (!lt->read)
        return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "seen_run", json_object_new_int64((int64_t)lt->ran));
    json_object_object_add(o, "late", json_object_new_int64((int64_t)lt->late));
    json_object_object_add(o, "heap_max", json_object_new_int64((int64_t)lt->heap_max));
    json_object_object_add(o, "untracked", json_object_new_boolean(lt->untracked));
    json_object *t = json_object_new_object();
    json_object_object_add(t, "seen", json_object_new_int64((int64_t)lt->timeouts_seen));
    json_object_object_add(t, "pending", json_object_new_int((int)lt->timeouts_pending));
    json_object_object_add(t, "pending_max", json_object_new_int((int)lt->timeouts_pending_max));
    json_object_object_add(t, "expired", json_object_new_int64((int64_t)lt->timeouts_expired));
    json_object_object_add(t, "expired_in_stalls",
                           json_object_new_int64((int64_t)lt->timeouts_expired_in_stalls));
    json_object_object_add(o, "timeouts", t);
    return o;
}

static json_object *loops_json(const struct sample_report *r)
{
    const struct run_metrics *m = r->m;
    json_object *arr = json_object_new_array();
    for (uint32_t k = 0; k < m->nthreads; k++) {
        const struct thread_metrics *t = &m->threads[m->thread_order[k]];
        const struct loop_track *l = &t->loop;
        if (!l->seen)
            continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "tid", json_object_new_int(t->tid));
        json_object_object_add(o, "name", json_object_new_string(t->name));
        json_object_object_add(o, "source", json_object_new_string("sampled"));
        json_object_object_add(o, "resolution_ms", jd(m->period_ms));
        json_object_object_add(o, "stall_threshold_ms", jd(m->stall_ms));
        json_object_object_add(o, "busy_pct", jd(l->busy_pct));
        json_object_object_add(o, "idle_pct", jd(100.0 - l->busy_pct));
        json_object_object_add(o, "stall_count", json_object_new_int((int)l->nstalls));
        json_object_object_add(o, "stall_p50_ms", l->nstalls ? jd(l->stall_p50_ms) : NULL);
        json_object_object_add(o, "stall_p99_ms", l->nstalls ? jd(l->stall_p99_ms) : NULL);
        json_object_object_add(o, "stall_max_ms", l->nstalls ? jd(l->stall_max_ms) : NULL);
        json_object_object_add(o, "stalled_pct", jd(l->stalled_pct));
        json_object_object_add(o, "busy_max_ms", jd(l->busy_max_ms));
        json_object *busy = json_object_new_array();
        for (uint32_t c = 0; c < l->nbusy_culprits; c++) {
            const struct loop_culprit *bc = &l->busy_culprits[c];
            if (!bc->on_cpu_samples)
                break;
            json_object *j = report_json_site(stack(r, bc->frame));
            if (!j)
                j = json_object_new_object();
            json_object_object_add(j, "share_pct", jd(bc->share_pct));
            json_object_array_add(busy, j);
        }
        json_object_object_add(o, "busy_on_cpu", busy);
        json_object_object_add(o, "timer_lag_source",
                               json_object_new_string(l->timer_lag_measured ? "timers" : "stalls"));
        json_object_object_add(o, "timer_lag_mean_ms", jd(l->timer_lag_mean_ms));
        json_object_object_add(o, "timer_lag_max_ms", jd(l->timer_lag_max_ms));
        json_object_object_add(o, "timer_lag_p50_ms", l->timer_lag_measured ? jd(l->timer_lag_p50_ms) : NULL);
        json_object_object_add(o, "timer_lag_p99_ms", l->timer_lag_measured ? jd(l->timer_lag_p99_ms) : NULL);
        json_object_object_add(o, "timers", loop_timers_json(&l->timers));
        json_object_object_add(o, "tasks", loop_tasks_json(r, &l->tasks));
        json_object_object_add(o, "timers_unavailable",
                               l->timers.read ? NULL
                               : json_object_new_string(m->no_asyncio ? "--no-asyncio: asyncio's objects were not read"
                                                                      : TIMERS_UNREAD));
        json_object *stalls = json_object_new_array();
        for (uint32_t i = 0; i < l->nstalls; i++) {
            json_object *s = json_object_new_object();
            json_object_object_add(s, "start_s", jd(l->stalls[i].start_s));
            json_object_object_add(s, "ms", jd(l->stalls[i].ms));
            json_object_array_add(stalls, s);
        }
        json_object_object_add(o, "stalls", stalls);
        json_object *ex = NULL;
        if (l->exact) {
            ex = json_object_new_object();
            json_object_object_add(ex, "source", json_object_new_string("exact"));
            json_object_object_add(ex, "stall_count", json_object_new_int((int)l->nexact));
            json_object_object_add(ex, "stall_p50_ms", l->nexact ? jd(l->exact_p50_ms) : NULL);
            json_object_object_add(ex, "stall_p99_ms", l->nexact ? jd(l->exact_p99_ms) : NULL);
            json_object_object_add(ex, "stall_max_ms", l->nexact ? jd(l->exact_max_ms) : NULL);
            json_object *all = json_object_new_array();
            for (uint32_t i = 0; i < l->nexact; i++)
                json_object_array_add(all, jd(l->exact_ms[i]));
            json_object_object_add(ex, "stalls_ms", all);
        }
        json_object_object_add(o, "exact", ex);
        json_object_object_add(o, "exact_unavailable",
                               l->exact ? NULL : json_object_new_string(m->loop_bpf_note));
        json_object *culprits = json_object_new_array();
        for (uint32_t c = 0; c < l->nculprits; c++) {
            const struct loop_culprit *lc = &l->culprits[c];
            json_object *j = report_json_site(stack(r, lc->frame));
            if (!j)
                j = json_object_new_object();
            bool on_cpu = lc->on_cpu_samples >= lc->blocked_samples;
            const char *sys = lc->syscall >= 0 ? syscall_name(lc->syscall) : NULL;
            json_object_object_add(j, "share_pct", jd(lc->share_pct));
            json_object_object_add(j, "stalled_ms", jd(lc->stalled_ms));
            json_object_object_add(j, "timeouts_expired", json_object_new_int((int)lc->timeouts_expired));
            json_object_object_add(j, "on_cpu", json_object_new_boolean(on_cpu));
            json_object_object_add(j, "syscall",
                                   !on_cpu && sys ? json_object_new_string(sys) : NULL);
            struct py_frame ctx[16];
            int nctx = loops_context_frames(&m->stacks, lc, ctx, 16);
            json_object *jc = NULL;
            if (nctx) {
                jc = json_object_new_object();
                json_object_object_add(jc, "kind", json_object_new_string(
                                                       lc->context == LOOP_CTX_TASK ? "task" : "callback"));
                json_object_object_add(jc, "frames", report_json_frames(ctx, nctx));
                json_object_object_add(jc, "task", lc->task[0] ? json_object_new_string(lc->task) : NULL);
                json_object_object_add(jc, "several_tasks", json_object_new_boolean(lc->several_tasks));
            }
            json_object_object_add(j, "context", jc);
            json_object_array_add(culprits, j);
        }
        json_object_object_add(o, "culprits", culprits);
        json_object_array_add(arr, o);
    }
    return arr;
}

static json_object *run_json(const struct run_metrics *m)
{
    json_object *run = json_object_new_object();
    json_object_object_add(run, "duration_s", jd(m->duration_s));
    json_object_object_add(run, "started_monotonic_s",
                           m->started_monotonic_s > 0 ? jd(m->started_monotonic_s) : NULL);
    json_object_object_add(run, "interrupted", json_object_new_boolean(m->interrupted));
    json_object_object_add(run, "process_exited", json_object_new_boolean(m->process_exited));
    json_object_object_add(run, "process_execd", json_object_new_boolean(m->process_execd));
    json_object *pyt = json_object_new_object();
    json_object_object_add(pyt, "min", json_object_new_int((int)m->py_min));
    json_object_object_add(pyt, "max", json_object_new_int((int)m->py_max));
    json_object_object_add(pyt, "created", json_object_new_int((int)m->py_created));
    json_object_object_add(pyt, "exited", json_object_new_int((int)m->py_exited));
    json_object_object_add(run, "python_threads", pyt);
    json_object *ost = json_object_new_object();
    json_object_object_add(ost, "min", json_object_new_int((int)m->os_min));
    json_object_object_add(ost, "max", json_object_new_int((int)m->os_max));
    json_object_object_add(ost, "created", json_object_new_int((int)m->os_created));
    json_object_object_add(ost, "exited", json_object_new_int((int)m->os_exited));
    json_object_object_add(run, "os_threads", ost);
    return run;
}

static json_object *samples_json(const struct run_metrics *m)
{
    json_object *samples = json_object_new_object();
    json_object_object_add(samples, "requested", json_object_new_int64((int64_t)m->samples_requested));
    json_object_object_add(samples, "taken", json_object_new_int64((int64_t)m->samples_taken));
    json_object_object_add(samples, "missed", json_object_new_int64((int64_t)m->missed));
    json_object_object_add(samples, "rate_hz", jd(m->rate_hz));
    json_object_object_add(samples, "requested_rate_hz", jd(m->requested_rate_hz));
    json_object_object_add(samples, "behind", json_object_new_boolean(m->behind));
    json_object_object_add(samples, "resolution_ms", jd(m->period_ms));
    return samples;
}

static json_object *sampler_json(const struct sample_report *r)
{
    json_object *sampler = json_object_new_object();
    json_object_object_add(sampler, "cpu_s", jd(r->cost->cpu_s));
    json_object_object_add(sampler, "us_per_thread_sample", jd(r->cost->us_per_thread_sample));
    json_object_object_add(sampler, "thread_samples",
                           json_object_new_int64((int64_t)r->cost->thread_samples));
    json_object_object_add(sampler, "read_syscalls", json_object_new_int64((int64_t)r->cost->syscalls));
    json_object_object_add(sampler, "bpf_reader", json_object_new_boolean(r->cost->bpf_reader));
    json_object_object_add(sampler, "bpf_reader_samples",
                           json_object_new_int64((int64_t)r->cost->bpf_samples));
    json_object_object_add(sampler, "bpf_note", json_object_new_string(r->cost->bpf_why));
    json_object_object_add(sampler, "still_thread_samples",
                           json_object_new_int64((int64_t)r->cost->still_thread_samples));
    if (r->cost->native) {
        const struct native_pause_stats *np = &r->cost->native_pause;
        json_object *nat = json_object_new_object();
        json_object_object_add(nat, "thread_stops", json_object_new_int64((int64_t)np->unwinds));
        json_object_object_add(nat, "failed", json_object_new_int64((int64_t)np->failed));
        json_object_object_add(nat, "pause_total_ms", jd(np->total_ms));
        json_object_object_add(nat, "pause_p50_us", jd(np->p50_us));
        json_object_object_add(nat, "pause_p99_us", jd(np->p99_us));
        json_object_object_add(nat, "pause_max_us", jd(np->max_us));
        json_object_object_add(nat, "sample_pause_max_us", jd(np->sample_max_us));
        json_object_object_add(nat, "stopped_p50_us", jd(np->stopped_p50_us));
        json_object_object_add(nat, "stopped_p99_us", jd(np->stopped_p99_us));
        json_object_object_add(nat, "stopped_max_us", jd(np->stopped_max_us));
        json_object_object_add(nat, "state_compared", json_object_new_int64((int64_t)np->compared));
        json_object_object_add(nat, "state_disagreed", json_object_new_int64((int64_t)np->disagree));
        json_object_object_add(sampler, "native", nat);
    }
    return sampler;
}

static json_object *gil_json(const struct run_metrics *m)
{
    json_object *gil = json_object_new_object();
    /* A free-threaded run whose GIL stayed off has no GIL figures: null,
     * not a misleading 0. */
    bool none = m->free_threaded && !m->gil_samples;
    json_object_object_add(gil, "free_threaded", json_object_new_boolean(m->free_threaded));
    json_object_object_add(gil, "disabled_pct", jd(m->gil_disabled_pct));
    json_object_object_add(gil, "held_pct", none ? NULL : jd(m->held_pct));
    json_object_object_add(gil, "contended_pct", none ? NULL : jd(m->contended_pct));
    json_object_object_add(gil, "waiters_mean", none ? NULL : jd(m->waiters_mean));
    json_object_object_add(gil, "waiters_max", none ? NULL : json_object_new_int((int)m->waiters_max));
    none = none || m->handoffs_unmeasured; /* from here: hand-off figures */
    json_object_object_add(gil, "handoffs", none ? NULL : json_object_new_int64((int64_t)m->handoffs));
    json_object_object_add(gil, "handoffs_per_s", none ? NULL : jd(m->handoffs_per_s));
    json_object_object_add(gil, "handoffs_per_cpu_s",
                           none || m->handoffs_per_cpu_s <= 0 ? NULL : jd(m->handoffs_per_cpu_s));
    json_object_object_add(gil, "mean_hold_ms", m->handoffs ? jd(m->mean_hold_ms) : NULL);
    json_object_object_add(gil, "switch_interval_ms",
                           m->handoffs_unmeasured ? NULL : jd((double)m->interval_us / 1000.0));
    json_object_object_add(gil, "source", json_object_new_string("sampled"));
    return gil;
}

static json_object *system_json(const struct system_view *v)
{
    json_object *sys = json_object_new_object();
    json_object *cpu = json_object_new_object();
    json_object_object_add(cpu, "logical", json_object_new_int(v->cpu.logical));
    json_object_object_add(cpu, "physical", json_object_new_int(v->cpu.physical));
    json_object_object_add(cpu, "affinity", json_object_new_int(v->cpu.affinity));
    json_object_object_add(cpu, "cgroup_quota_cpus", v->cpu.quota_cpus > 0 ? jd(v->cpu.quota_cpus) : NULL);
    json_object_object_add(cpu, "steal_pct", jd(v->cpu.steal_pct));
    json_object_object_add(cpu, "runnable_start", json_object_new_int(v->cpu.running_start));
    json_object_object_add(cpu, "runnable_end", json_object_new_int(v->cpu.running_end));
    json_object_object_add(sys, "cpu", cpu);
    json_object *tree = json_object_new_object();
    json_object_object_add(tree, "children_start", json_object_new_int(v->tree_start.children));
    json_object_object_add(tree, "children_end", json_object_new_int(v->tree_end.children));
    json_object_object_add(tree, "children_growth_per_s", jd(v->children_growth_per_s));
    json_object_object_add(tree, "zombies", json_object_new_int(v->tree_end.zombies));
    json_object_object_add(tree, "zombie_parent",
                           v->tree_end.zombie_parent ? json_object_new_int(v->tree_end.zombie_parent)
                                                     : NULL);
    json_object_object_add(tree, "python_children", json_object_new_int(v->tree_end.python_children));
    json_object_object_add(tree, "running_children", json_object_new_int(v->tree_end.busy_children));
    json_object_object_add(tree, "cpu_bound_children",
                           json_object_new_int(v->tree_end.cpu_bound_children));
    json_object_object_add(tree, "cpu_bound_children_cpu_pct", jd(v->tree_end.children_cpu_pct));
    json_object_object_add(tree, "target_cpu_pct", jd(v->target_cpu_pct));
    json_object_object_add(sys, "process_tree", tree);
    json_object *mem = json_object_new_object();
    json_object_object_add(mem, "rss_start_kb", json_object_new_int64((int64_t)v->mem_start.rss_kb));
    json_object_object_add(mem, "rss_end_kb", json_object_new_int64((int64_t)v->mem_end.rss_kb));
    json_object_object_add(mem, "rss_growth_kb_per_s", jd(v->rss_growth_kb_per_s));
    json_object_object_add(mem, "thread_stacks", json_object_new_int(v->mem_end.stacks));
    json_object_object_add(mem, "stacks_reserved_kb",
                           json_object_new_int64((int64_t)v->mem_end.stacks_reserved_kb));
    json_object_object_add(mem, "stacks_resident_kb",
                           json_object_new_int64((int64_t)v->mem_end.stacks_resident_kb));
    json_object_object_add(sys, "memory", mem);
    return sys;
}

static json_object *finding_json(const struct sample_report *r, const struct finding *f)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "scenario", json_object_new_string(f->scenario));
    /* The process it was found in: the target, or the worst child. */
    json_object_object_add(j, "pid", json_object_new_int(f->nchildren ? f->children[0] : r->pid));
    json_object *pids = NULL;
    if (f->nchildren) {
        pids = json_object_new_array();
        for (int c = 0; c < f->nchildren; c++)
            json_object_array_add(pids, json_object_new_int(f->children[c]));
    }
    json_object_object_add(j, "subprocesses", pids);
    json_object_object_add(j, "subprocesses_sampled",
                           f->nchildren ? json_object_new_int(f->children_sampled) : NULL);
    json_object_object_add(j, "severity", json_object_new_string(severity_name(f->severity)));
    json_object_object_add(j, "title", json_object_new_string(f->title));
    json_object_object_add(j, "verdict", json_object_new_string(f->verdict));
    json_object *ev = json_object_new_array();
    for (int e = 0; e < f->nevidence; e++) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "metric", json_object_new_string(f->evidence[e].metric));
        json_object_object_add(x, "value", jd(f->evidence[e].value));
        json_object_object_add(x, "op", json_object_new_string(f->evidence[e].op));
        json_object_object_add(x, "threshold", jd(f->evidence[e].threshold));
        json_object_array_add(ev, x);
    }
    json_object_object_add(j, "evidence", ev);
    json_object_object_add(j, "culprit", json_object_new_string(f->culprit));
    json_object_object_add(j, "advice", json_object_new_string(f->advice));
    report_finding_blame_json(j, r->m, f);
    return j;
}

static json_object *findings_json(const struct sample_report *r)
{
    json_object *findings = json_object_new_array();
    for (int i = 0; r->diag && i < r->diag->n; i++)
        json_object_array_add(findings, finding_json(r, &r->diag->findings[i]));
    return findings;
}

json_object *report_sample_doc(const struct sample_report *r)
{
    const struct run_metrics *m = r->m;
    json_object *root = json_object_new_object();
    json_object_object_add(root, "schema", json_object_new_int(SAMPLE_SCHEMA_VERSION));
    json_object_object_add(root, "command", json_object_new_string(r->command ? r->command : "sample"));
    json_object_object_add(root, "pid", json_object_new_int(r->pid));
    json_object_object_add(root, "cmdline", json_object_new_string(r->cmdline));
    json_object_object_add(root, "python", report_json_python(r->rt));
    json_object_object_add(root, "run", run_json(m));
    json_object_object_add(root, "samples", samples_json(m));
    json_object_object_add(root, "sampler", sampler_json(r));
    json_object_object_add(root, "gil", gil_json(m));
    json_object_object_add(root, "gil_exact", exact_json(r));
    json_object_object_add(root, "gil_exact_unavailable",
                           m->exact.valid ? NULL : json_object_new_string(m->bpf_note));
    json_object *threads = json_object_new_array();
    for (uint32_t k = 0; k < m->nthreads; k++)
        json_object_array_add(threads, thread_json(r, &m->threads[m->thread_order[k]]));
    json_object_object_add(root, "threads", threads);
    json_object *locks = json_object_new_array();
    for (uint32_t k = 0; k < m->nlocks; k++)
        json_object_array_add(locks, lock_json(r, &m->locks[m->lock_order[k]]));
    json_object_object_add(root, "locks", locks);
    json_object_object_add(root, "loops", loops_json(r));
    json_object_object_add(root, "system", system_json(&m->system));
    json_object_object_add(root, "findings", findings_json(r));
    json_object *subs = json_object_new_array();
    for (int i = 0; i < r->nchildren; i++)
        if (r->children[i])
            json_object_array_add(subs, json_object_get(r->children[i]));
    json_object_object_add(root, "subprocesses", subs);
    return root;
}
