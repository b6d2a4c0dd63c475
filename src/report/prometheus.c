/* fleet_render: the Prometheus exposition of the fleet's totals. Names in
 * base units with _seconds/_total, counters and histograms rather than
 * ratios (rate() gives the share). The same families in both formats; in
 * OpenMetrics a counter family drops its _total (the samples keep it),
 * info families drop _info, and the text ends with "# EOF". */
#include <inttypes.h>
#include <string.h>

#include "report/fleet.h"
#include "util/version.h"

enum kind { COUNTER, GAUGE, HISTOGRAM, INFO };

struct out {
    FILE *f;
    bool om;
};

/* The label value with \, " and newlines escaped. */
static void put_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f), fputc(*v, f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

/* name: the sample name's stem (without _total / _info). */
static void family(struct out *o, const char *name, enum kind k, const char *unit, const char *help)
{
    static const char *const TYPES[] = {"counter", "gauge", "histogram", "info"};
    const char *suffix = "";
    if (!o->om && k == COUNTER)
        suffix = "_total";
    if (!o->om && k == INFO)
        suffix = "_info";
    fprintf(o->f, "# HELP %s%s %s\n", name, suffix, help);
    fprintf(o->f, "# TYPE %s%s %s\n", name, suffix, !o->om && k == INFO ? "gauge" : TYPES[k]);
    if (o->om && unit)
        fprintf(o->f, "# UNIT %s %s\n", name, unit);
}

/* The target's own labels, then extra="value" pairs (NULL-terminated). */
static void labels(FILE *f, const struct fleet_target *t, const char *const *extra)
{
    fprintf(f, "{pid=\"%d\",exe=\"", (int)t->pid);
    put_value(f, t->exe);
    fprintf(f, "\",python_version=\"");
    put_value(f, t->python_version);
    fputc('"', f);
    if (t->ids.container_id[0])
        fprintf(f, ",container_id=\"%s\"", t->ids.container_id);
    if (t->ids.pod_uid[0])
        fprintf(f, ",pod_uid=\"%s\"", t->ids.pod_uid);
    for (; extra && extra[0]; extra += 2) {
        fprintf(f, ",%s=\"", extra[0]);
        put_value(f, extra[1]);
        fputc('"', f);
    }
    fputc('}', f);
}

static void sample(struct out *o, const char *name, const char *suffix,
                   const struct fleet_target *t, const char *const *extra, double v)
{
    fprintf(o->f, "%s%s", name, suffix);
    labels(o->f, t, extra);
    fprintf(o->f, " %.17g\n", v);
}

static void sample_u(struct out *o, const char *name, const char *suffix,
                     const struct fleet_target *t, const char *const *extra, uint64_t v)
{
    fprintf(o->f, "%s%s", name, suffix);
    labels(o->f, t, extra);
    fprintf(o->f, " %" PRIu64 "\n", v);
}

static void histogram(struct out *o, const char *name, const struct fleet_target *t,
                      const uint64_t *le, const double *bounds, size_t nbounds, double sum)
{
    uint64_t cum = 0;
    char b[32];
    const char *extra[] = {"le", b, NULL};
    for (size_t i = 0; i <= nbounds; i++) {
        cum += le[i];
        if (i < nbounds)
            snprintf(b, sizeof b, "%g", bounds[i]);
        else
            snprintf(b, sizeof b, "+Inf");
        sample_u(o, name, "_bucket", t, extra, cum);
    }
    sample_u(o, name, "_count", t, NULL, cum);
    sample(o, name, "_sum", t, NULL, sum);
}

typedef void (*per_target)(struct out *o, const struct fleet_target *t);

static void each(struct out *o, const struct fleet *f, per_target fn)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (f->t[i].info_seen)
            fn(o, &f->t[i]);
}

static void gil_held(struct out *o, const struct fleet_target *t)
{
    sample(o, "gilprobe_gil_held_seconds", "_total", t, NULL, t->held_s);
}

static void gil_contended(struct out *o, const struct fleet_target *t)
{
    sample(o, "gilprobe_gil_contended_seconds", "_total", t, NULL, t->contended_s);
}

static void gil_wait(struct out *o, const struct fleet_target *t)
{
    for (uint32_t i = 0; i <= FLEET_THREAD_LABELS; i++) {
        /* its own labels, then "other" once something went there */
        if (i == FLEET_THREAD_LABELS ? !t->threads[i].name[0] : i >= t->nthreads)
            continue;
        const char *extra[] = {"thread", t->threads[i].name, NULL};
        sample(o, "gilprobe_gil_wait_seconds", "_total", t, extra, t->threads[i].gil_wait_s);
    }
}

static void gil_acquisitions(struct out *o, const struct fleet_target *t)
{
    if (t->exact)
        sample_u(o, "gilprobe_gil_acquisitions", "_total", t, NULL, t->acquisitions);
}

static void gil_handoffs(struct out *o, const struct fleet_target *t)
{
    sample_u(o, "gilprobe_gil_handoffs", "_total", t, NULL, t->handoffs);
}

static void wait_hist(struct out *o, const struct fleet_target *t)
{
    if (t->exact)
        histogram(o, "gilprobe_gil_wait_duration_seconds", t, t->wait.le, exact_le_bounds_s,
                  EXACT_LE_BOUNDS, t->wait.sum_s);
}

static void hold_hist(struct out *o, const struct fleet_target *t)
{
    if (t->exact)
        histogram(o, "gilprobe_gil_hold_duration_seconds", t, t->hold.le, exact_le_bounds_s,
                  EXACT_LE_BOUNDS, t->hold.sum_s);
}

static void states(struct out *o, const struct fleet_target *t)
{
    for (int k = 0; k < TS_COUNT; k++) {
        const char *extra[] = {"state", tstate_kind_key((enum tstate_kind)k), NULL};
        sample(o, "gilprobe_thread_state_seconds", "_total", t, extra, t->state_s[k]);
    }
}

static void locks(struct out *o, const struct fleet_target *t)
{
    for (uint32_t i = 0; i <= FLEET_LOCK_LABELS; i++) {
        if (i == FLEET_LOCK_LABELS ? !t->locks[i].name[0] : i >= t->nlocks)
            continue;
        const char *extra[] = {"lock_site", t->locks[i].name, NULL};
        sample(o, "gilprobe_lock_wait_seconds", "_total", t, extra, t->locks[i].s);
    }
}

static void loop_busy(struct out *o, const struct fleet_target *t)
{
    if (t->loops_seen)
        sample(o, "gilprobe_asyncio_loop_busy_seconds", "_total", t, NULL, t->loop_busy_s);
}

static void loop_stalls(struct out *o, const struct fleet_target *t)
{
    if (t->loops_seen)
        histogram(o, "gilprobe_asyncio_loop_stall_duration_seconds", t, t->stall_le,
                  fleet_stall_bounds_s, FLEET_STALL_BOUNDS, t->stall_sum_s);
}

static void timer_lag(struct out *o, const struct fleet_target *t)
{
    if (t->timers_seen)
        histogram(o, "gilprobe_asyncio_timer_lag_seconds", t, t->lag_le, fleet_lag_bounds_s,
                  FLEET_LAG_BOUNDS, t->lag_sum_s);
}

static void timeouts_expired(struct out *o, const struct fleet_target *t)
{
    if (!t->timers_seen)
        return;
    const char *busy[] = {"in_stall", "false", NULL}, *stall[] = {"in_stall", "true", NULL};
    sample_u(o, "gilprobe_asyncio_timeouts_expired", "_total", t, busy, t->timeouts_expired[0]);
    sample_u(o, "gilprobe_asyncio_timeouts_expired", "_total", t, stall, t->timeouts_expired[1]);
}

static void tasks(struct out *o, const struct fleet_target *t)
{
    if (t->tasks >= 0)
        sample_u(o, "gilprobe_asyncio_tasks", "", t, NULL, (uint64_t)t->tasks);
}

static void threads(struct out *o, const struct fleet_target *t)
{
    sample_u(o, "gilprobe_threads", "", t, NULL, t->python_threads);
}

static void findings(struct out *o, const struct fleet_target *t)
{
    for (uint32_t i = 0; i < t->nfindings; i++) {
        const char *extra[] = {"scenario", t->findings[i].scenario, "severity",
                               t->findings[i].severity, NULL};
        sample_u(o, "gilprobe_finding", "", t, extra, 1);
    }
}

static void target_info(struct out *o, const struct fleet_target *t)
{
    const char *extra[] = {"free_threaded", t->free_threaded ? "true" : "false", "gil_enabled",
                           t->gil_enabled ? "true" : "false", NULL};
    sample_u(o, "gilprobe_target", "_info", t, extra, 1);
}

static void samples(struct out *o, const struct fleet_target *t)
{
    sample_u(o, "gilprobe_samples", "_total", t, NULL, t->samples);
}

static void sample_errors(struct out *o, const struct fleet_target *t)
{
    const char *missed[] = {"reason", "missed_tick", NULL};
    const char *unread[] = {"reason", "gil_unreadable", NULL};
    sample_u(o, "gilprobe_sample_errors", "_total", t, missed, t->missed_ticks);
    sample_u(o, "gilprobe_sample_errors", "_total", t, unread, t->gil_unreadable);
}

void fleet_render(const struct fleet *f, bool openmetrics, FILE *f_out)
{
    struct out o = {f_out, openmetrics};
    static const struct {
        const char *name;
        enum kind kind;
        const char *unit;
        const char *help;
        per_target fn;
    } FAMILIES[] = {
        {"gilprobe_gil_held_seconds", COUNTER, "seconds",
         "Time the GIL was held (exact with eBPF, else sampled).", gil_held},
        {"gilprobe_gil_contended_seconds", COUNTER, "seconds",
         "Time at least one thread waited for the GIL (sampled).", gil_contended},
        {"gilprobe_gil_wait_seconds", COUNTER, "seconds",
         "Time threads waited for the GIL, by thread name (exact with eBPF, else sampled).",
         gil_wait},
        {"gilprobe_gil_acquisitions", COUNTER, NULL, "GIL acquisitions (exact, eBPF).",
         gil_acquisitions},
        {"gilprobe_gil_handoffs", COUNTER, NULL,
         "GIL hand-offs between threads (the GIL's switch counter).", gil_handoffs},
        {"gilprobe_gil_wait_duration_seconds", HISTOGRAM, "seconds",
         "How long each wait for the GIL lasted (exact, eBPF).", wait_hist},
        {"gilprobe_gil_hold_duration_seconds", HISTOGRAM, "seconds",
         "How long each hold of the GIL lasted (exact, eBPF).", hold_hist},
        {"gilprobe_thread_state_seconds", COUNTER, "seconds",
         "Thread time by state, summed over the target's threads (sampled).", states},
        {"gilprobe_lock_wait_seconds", COUNTER, "seconds",
         "Thread time blocked on a lock other than the GIL, by where it is waited on.", locks},
        {"gilprobe_asyncio_loop_busy_seconds", COUNTER, "seconds",
         "Time asyncio event loops spent out of their selector (running callbacks).", loop_busy},
        {"gilprobe_asyncio_loop_stall_duration_seconds", HISTOGRAM, "seconds",
         "Event-loop stalls (busy stretches past the stall threshold) by length.", loop_stalls},
        {"gilprobe_asyncio_timer_lag_seconds", HISTOGRAM, "seconds",
         "How late asyncio timers ran, the timers seen on the loops' heaps.", timer_lag},
        {"gilprobe_asyncio_timeouts_expired", COUNTER, NULL,
         "asyncio timeouts (wait_for, timeout) that expired because their loop was busy at the "
         "deadline, by whether it was stalled.",
         timeouts_expired},
        {"gilprobe_asyncio_tasks", GAUGE, NULL,
         "asyncio tasks alive (each loop thread's on 3.14+, else the process's).", tasks},
        {"gilprobe_threads", GAUGE, NULL, "Python threads of the target.", threads},
        {"gilprobe_finding", GAUGE, NULL,
         "1 while a diagnosis finding holds over the last window.", findings},
        {"gilprobe_target", INFO, NULL, "The target process and its interpreter.", target_info},
        {"gilprobe_samples", COUNTER, NULL, "Samples gilprobe took of the target.", samples},
        {"gilprobe_sample_errors", COUNTER, NULL,
         "Samples missed or partly unreadable, by reason.", sample_errors},
    };
    for (size_t i = 0; i < sizeof FAMILIES / sizeof *FAMILIES; i++) {
        family(&o, FAMILIES[i].name, FAMILIES[i].kind, FAMILIES[i].unit, FAMILIES[i].help);
        each(&o, f, FAMILIES[i].fn);
    }
    family(&o, "gilprobe_build", INFO, NULL, "gilprobe itself.");
    fprintf(f_out, "gilprobe_build_info{version=\"%s\"} 1\n", GILPROBE_VERSION);
    family(&o, "gilprobe_targets", GAUGE, NULL, "Python processes being watched.");
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->n; i++)
        n += f->t[i].info_seen;
    fprintf(f_out, "gilprobe_targets %u\n", n);
    if (openmetrics)
        fputs("# EOF\n", f_out);
}
