/* `gilprobe watch -p PID`: a flight recorder. The sampler runs until
 * stopped in one-second windows; each second becomes a timeline entry, the
 * raw samples of the last seconds stay in a ring, and the triggers
 * (--fail-on expressions) are evaluated over the last --window seconds.
 * One that fires opens an incident: recording goes on for half a window,
 * then the incident's samples are replayed into a report of their own and
 * written as a bundle (report, timeline, stacks, page). Memory is bounded
 * by --keep, --window and the live threads, never by the run's length. */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analysis/figures.h"
#include "commands.h"
#include "ebpf/gil.h"
#include "ebpf/loop.h"
#include "record/sample_ring.h"
#include "record/timeline.h"
#include "report/bundle.h"
#include "report/export_record.h"
#include "report/sample.h"
#include "util/signals.h"
#include "util/clock.h"

/* An incident's report covers its worst stretch this long (find_focus). */
#define BUNDLE_FOCUS_S 3.0

/* serve's collectors send their figures at each scrape (serve signals
 * them, SIGUSR2), and at least this often when nobody scrapes. A counter
 * that steps at irregular times reads wrong in rate(): steps 2 s apart on
 * a 1 s scrape put 4 steps in one 10 s window and 5 in the next
 * (-11%/+11%); a step just after each scrape puts exactly one in every
 * scrape interval, whatever the interval. Each window costs a wake-up, a
 * read of the kernel's GIL aggregates and a line (bench_serve measures
 * it), so an unscraped collector sends few. */
#define WATCH_EXPORT_WINDOW_S 10.0
/* ... and no more often than this, however often they are scraped. */
#define WATCH_EXPORT_WINDOW_MIN_S 0.5

/* Long enough to be "until stopped". */
#define WATCH_RUN_S (100.0 * 365 * 86400)

static volatile sig_atomic_t g_bundle_requested, g_window_requested;

static void on_usr1(int sig)
{
    (void)sig;
    g_bundle_requested = 1;
}

static void on_usr2(int sig)
{
    (void)sig;
    g_window_requested = 1;
}

struct second_mark {
    double t;             /* sample time of the mark */
    struct gil_mark *mk;  /* NULL without exact timing */
};

struct watch_state {
    const struct watch_options *opt;
    struct pyrt *rt;
    struct pyobj_cache *cache;
    struct gil_exact *gil;
    struct loop_exact *loops;
    struct sample_ring ring;
    struct timeline tl;
    /* exact GIL aggregates at the end of each kept second (circular) */
    struct second_mark *marks;
    uint32_t nmarks, capmarks, headmark;
    double origin;   /* CLOCK_MONOTONIC time of sample time 0 */
    double last_fired[CHECKS_MAX];
    /* the incident being recorded */
    bool pending;
    double pend_start, pend_deadline;
    bool pend_requested; /* opened by SIGUSR1, no trigger since */
    json_object *fired; /* its triggers */
    struct system_view pend_system;
    unsigned bundles; /* written */
    unsigned seq;     /* the last bundle's number */
    pid_t writer;     /* the child writing a bundle, or 0 */
    unsigned long seconds;
    bool oom;
    double last_window_t; /* export: the previous second's end */
    double next_findings; /* export: when the findings are next due */
};

static void on_bounds(bool end, double at, void *arg)
{
    struct watch_state *w = arg;
    /* (the first attachment's start: sample times count from it, also
     * after an exec) */
    if (!end && !w->origin)
        w->origin = w->ring.origin = at;
}

static void on_sample(const struct run_metrics *m, const struct sample_obs *s, void *arg)
{
    struct watch_state *w = arg;
    sample_ring_push(&w->ring, m, s);
}

static void on_refresh(const struct snapshot *snap, void *arg)
{
    struct watch_state *w = arg;
    gil_exact_update(w->gil, snap);
    loop_exact_poll(w->loops);
}

static void push_mark(struct watch_state *w, double t, struct gil_mark *mk)
{
    if (w->nmarks == w->capmarks) {
        struct second_mark *old = &w->marks[w->headmark];
        gil_exact_mark_free(old->mk);
        *old = (struct second_mark){t, mk};
        w->headmark = (w->headmark + 1) % w->capmarks;
        return;
    }
    w->marks[(w->headmark + w->nmarks++) % w->capmarks] = (struct second_mark){t, mk};
}

/* The kept mark closest to sample time t at or after it (the newest when
 * none is), or NULL. */
static const struct second_mark *mark_at(const struct watch_state *w, double t)
{
    for (uint32_t i = 0; i < w->nmarks; i++) {
        const struct second_mark *m = &w->marks[(w->headmark + i) % w->capmarks];
        if (m->t >= t)
            return m;
    }
    return w->nmarks ? &w->marks[(w->headmark + w->nmarks - 1) % w->capmarks] : NULL;
}

static const struct second_mark *newest_mark(const struct watch_state *w)
{
    return w->nmarks ? &w->marks[(w->headmark + w->nmarks - 1) % w->capmarks] : NULL;
}

/* The metrics of [from, to] (sample times), replayed from the ring, with
 * the exact GIL and loop figures of the same span, finished. The live
 * stack table is lent to out; give it back with span_done. */
static void span_metrics(struct watch_state *w, struct run_metrics *live, double from, double to,
                         struct run_metrics *out)
{
    metrics_init(out);
    stack_table_free(&out->stacks);
    out->stacks = live->stacks;
    sample_ring_replay(&w->ring, from, to, live, out);
    const struct second_mark *a = mark_at(w, from), *b = newest_mark(w);
    if (a && b && a != b && a->mk && b->mk)
        gil_exact_collect_span(w->gil, a->mk, b->mk, w->rt, w->cache, out);
    if (w->loops)
        loop_exact_collect_span(w->loops, (uint64_t)((w->origin + from) * 1e9),
                                (uint64_t)((w->origin + to) * 1e9), out);
    metrics_finish(out);
}

static void span_done(struct run_metrics *live, struct run_metrics *out)
{
    live->stacks = out->stacks; /* interned into meanwhile: the live table */
    stack_table_init(&out->stacks);
    metrics_free(out);
}

static void utc_text(double unix_s, char *buf, size_t sz)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The triggers over the last window; those that fire (out of their
 * cooldown) join the incident, opening one if none is being recorded. */
static void evaluate_triggers(struct watch_state *w, struct run_metrics *live, double t)
{
    const struct watch_options *o = w->opt;
    if (!o->ntriggers)
        return;
    struct run_metrics span;
    span_metrics(w, live, t - o->window_s > 0 ? t - o->window_s : 0, t, &span);
    struct diagnosis *diag = calloc(1, sizeof *diag);
    if (!diag) {
        span_done(live, &span);
        w->oom = true;
        return;
    }
    diagnose(&span, diag);
    struct sample_report rep = {.command = "watch", .pid = o->pid, .rt = w->rt, .m = &span,
                                .diag = diag, .figures_only = true};
    struct sampler_cost cost = {0};
    rep.cost = &cost;
    json_object *doc = report_sample_doc(&rep);
    checks_evaluate(o->triggers, o->ntriggers, doc);
    json_object_put(doc);
    for (size_t i = 0; i < o->ntriggers; i++) {
        if (o->triggers[i].outcome != CHECK_FAILED)
            continue; /* the expression does not hold (or cannot be measured) */
        if (t - w->last_fired[i] < o->cooldown_s)
            continue;
        w->last_fired[i] = t;
        if (!w->pending) {
            w->pending = true;
            w->pend_start = t;
            w->pend_deadline = t + o->window_s / 2;
            w->fired = json_object_new_array();
            system_begin(o->pid, &w->pend_system);
        } else if (w->pend_requested) {
            /* Joins a bundle asked for with SIGUSR1 (due at once): the
             * spike that fired it gets its half window after all (else a
             * spike caught in the same second was cut at its start: 4 of 59
             * in an hour's soak with SIGUSR1 every 10 s). */
            w->pend_requested = false;
            w->pend_deadline = t + o->window_s / 2;
        }
        char at[32];
        utc_text((double)time(NULL), at, sizeof at);
        json_object *f = json_object_new_object();
        json_object_object_add(f, "expr", json_object_new_string(o->triggers[i].expr));
        json_object_object_add(f, "measured", json_object_new_string(o->triggers[i].measured));
        json_object_object_add(f, "at", json_object_new_string(at));
        json_object_object_add(f, "t", json_object_new_double(t));
        json_object_array_add(w->fired, f);
    }
    free(diag);
    span_done(live, &span);
}

/* How bad a diagnosis is: its critical findings first, then its
 * warnings, then how far past their thresholds they are (the first
 * evidence of each). A spike seen whole makes more findings (thrashing
 * threads, and the loop they starve) than one seen in part. */
static double diagnosis_score(const struct diagnosis *d)
{
    double crit = 0, warn = 0, past = 0;
    for (int i = 0; i < d->n; i++) {
        const struct finding *f = &d->findings[i];
        if (f->severity == SEV_INFO)
            continue;
        *(f->severity == SEV_CRITICAL ? &crit : &warn) += 1;
        if (f->nevidence && f->evidence[0].threshold > 0)
            past += f->evidence[0].value / f->evidence[0].threshold;
    }
    return 1e6 * crit + 1e3 * warn + (past < 999 ? past : 999);
}

/* The focus of an incident: of the BUNDLE_FOCUS_S stretches of [from, to]
 * (one a second), the one with the worst diagnosis. Shares over the whole
 * span would dilute a spike: a 2.5 s burst of six CPU-bound threads is 17%
 * of a 15 s span, under any thrashing threshold, and all of a 3 s one.
 * The whole span when no stretch has a finding of warning or worse. */
static void find_focus(struct watch_state *w, struct run_metrics *live, double from, double to,
                       struct diagnosis *scratch, double *focus_from, double *focus_to)
{
    *focus_from = from;
    *focus_to = to;
    double best = 0;
    for (double a = from; a + BUNDLE_FOCUS_S <= to + 1e-6; a += 1.0) {
        struct run_metrics span;
        span_metrics(w, live, a, a + BUNDLE_FOCUS_S, &span);
        diagnose(&span, scratch);
        double score = diagnosis_score(scratch);
        if (score >= 1e3 && score > best) { /* a warning at least */
            best = score;
            *focus_from = a;
            *focus_to = a + BUNDLE_FOCUS_S;
        }
        span_done(live, &span);
    }
}

/* The incident's samples [from, to] as bundle number seq, announced on
 * stderr; false when it could not be written. */
static bool write_bundle_here(struct watch_state *w, struct run_metrics *live, double from,
                              double to, unsigned seq)
{
    const struct watch_options *o = w->opt;
    struct diagnosis *diag = calloc(1, sizeof *diag);
    if (!diag)
        return false;
    double focus_from, focus_to;
    find_focus(w, live, from, to, diag, &focus_from, &focus_to);
    struct run_metrics span;
    span_metrics(w, live, focus_from, focus_to, &span);
    diagnose(&span, diag);
    system_end(o->pid, &w->pend_system, to - w->pend_start, live->process_exited);
    span.system = w->pend_system;
    struct sample_report rep = {.command = "watch", .pid = o->pid, .rt = w->rt, .m = &span,
                                .diag = diag};
    proc_cmdline(o->pid, rep.cmdline, sizeof rep.cmdline);
    struct sampler_cost cost = {0};
    rep.cost = &cost;
    struct bundle_input in = {.dir = o->out_dir,
                              .pid = o->pid,
                              .seq = seq,
                              .when = time(NULL),
                              .rep = &rep,
                              .triggers = w->fired,
                              .tl = &w->tl,
                              .span_from = from,
                              .span_to = to,
                              .focus_from = focus_from,
                              .focus_to = focus_to};
    char path[4200];
    struct gp_error err = {0};
    bool ok = bundle_write(&in, path, sizeof path, &err) == GP_OK;
    if (ok) {
        const struct finding *top = diag->n ? &diag->findings[0] : NULL;
        fprintf(stderr, "gilprobe: incident bundle %s: %s%s%s\n", path,
                top ? top->scenario : "no known contention pattern found", top ? " " : "",
                top ? top->title : "");
    } else {
        fprintf(stderr, "gilprobe: %s; recording goes on\n", err.msg);
    }
    memset(&span.system, 0, sizeof span.system); /* system_end freed what it had */
    free(diag);
    span_done(live, &span);
    return ok;
}

/* Waits for the bundle writer, if one runs, and counts its bundle. */
static void reap_writer(struct watch_state *w, bool wait)
{
    int status;
    if (w->writer <= 0)
        return;
    pid_t r;
    while ((r = waitpid(w->writer, &status, wait ? 0 : WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return; /* still writing */
    w->bundles += r == w->writer && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    w->writer = 0;
}

/* The incident as a bundle, written by a child process while recording
 * goes on. A bundle makes thousands of short-lived allocations (span
 * replays, reports, the page): made in the recorder itself, with a bundle
 * every few seconds, they left its heap fragmented (RSS 22 -> 35 MB in
 * 90 s with under 10 MB in use); in a child they go with it. One writer at
 * a time; in process when fork fails. */
static void write_bundle(struct watch_state *w, struct run_metrics *live, double from, double to)
{
    reap_writer(w, true);
    unsigned seq = ++w->seq;
    pid_t c = fork();
    if (c == 0)
        _exit(write_bundle_here(w, live, from, to, seq) ? 0 : 1);
    if (c < 0) {
        w->bundles += write_bundle_here(w, live, from, to, seq);
    } else {
        w->writer = c;
        /* what the child's system_end frees, the parent's copy too */
        free(w->pend_system.children_start);
        memset(&w->pend_system, 0, sizeof w->pend_system);
    }
    json_object_put(w->fired);
    w->fired = NULL;
    w->pending = w->pend_requested = false;
}

static void request_bundle_now(struct watch_state *w, double t)
{
    if (w->pending)
        return; /* the incident being recorded will be written */
    w->pending = true;
    w->pend_start = t;
    w->pend_deadline = t; /* at once */
    w->pend_requested = true;
    w->fired = json_object_new_array();
    system_begin(w->opt->pid, &w->pend_system);
    char at[32];
    utc_text((double)time(NULL), at, sizeof at);
    json_object *f = json_object_new_object();
    json_object_object_add(f, "expr", json_object_new_string("SIGUSR1"));
    json_object_object_add(f, "measured", json_object_new_string("requested"));
    json_object_object_add(f, "at", json_object_new_string(at));
    json_object_object_add(f, "t", json_object_new_double(t));
    json_object_array_add(w->fired, f);
}

/* One line to the server; a closed pipe (the server went away) ends the
 * collector. */
static void export_line(struct watch_state *w, json_object *o)
{
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (fprintf(w->opt->export_out, "%s\n", text) < 0 || fflush(w->opt->export_out) != 0)
        signals_stop_requested = 1;
    json_object_put(o);
}

/* The findings over the last window, when due. NULL when not (or out of
 * memory); free() it. */
static struct diagnosis *findings_due(struct watch_state *w, struct run_metrics *live, double t)
{
    const struct watch_options *o = w->opt;
    /* the first once half a window is recorded (findings over the first
     * second or two say nothing), then every window */
    if (t < w->next_findings || t < o->window_s / 2)
        return NULL;
    w->next_findings = t + o->window_s;
    struct diagnosis *diag = calloc(1, sizeof *diag);
    if (!diag)
        return NULL;
    struct run_metrics span;
    span_metrics(w, live, t - o->window_s > 0 ? t - o->window_s : 0, t, &span);
    diagnose(&span, diag);
    span_done(live, &span);
    return diag;
}

/* Every second, from the sampler. */
static void on_window(struct run_metrics *m, void *arg)
{
    struct watch_state *w = arg;
    const struct watch_options *o = w->opt;
    double t = clock_mono_s() - w->origin;
    /* the second's exact GIL figures, between its two marks */
    gil_exact_clear(m);
    struct gil_mark *mk = gil_exact_mark_take(w->gil);
    const struct second_mark *prev = newest_mark(w);
    if (mk && prev && prev->mk)
        gil_exact_collect_span(w->gil, prev->mk, mk, w->rt, w->cache, m);
    push_mark(w, t, mk);
    if (w->nmarks)
        gil_exact_forget_dead(w->gil, w->marks[w->headmark].mk, mk);
    metrics_window_finish(m);
    if (o->export_out) {
        double window_s = t - w->last_window_t;
        if (w->loops)
            loop_exact_collect_span(w->loops, (uint64_t)((w->origin + w->last_window_t) * 1e9),
                                    (uint64_t)((w->origin + t) * 1e9), m);
        w->last_window_t = t;
        export_line(w, export_window(m, window_s > 0 ? window_s : 0));
    } else {
        system_observe(o->pid, &m->system, t);
        timeline_add(&w->tl, m, t, (double)time(NULL), m->system.rss_last_kb);
    }
    sample_ring_note_threads(&w->ring, m);
    double keep_from = w->origin + t - w->ring.keep_s;
    if (keep_from > 0)
        loop_exact_forget_before(w->loops, (uint64_t)(keep_from * 1e9));
    metrics_window_reset(m);
    gil_exact_clear(m);
    if (g_bundle_requested) {
        g_bundle_requested = 0;
        request_bundle_now(w, t);
    }
    if (o->export_out) {
        struct diagnosis *diag = findings_due(w, m, t);
        if (diag) {
            export_line(w, export_findings(diag));
            free(diag);
        }
    }
    evaluate_triggers(w, m, t);
    reap_writer(w, false);
    if (w->pending && t >= w->pend_deadline)
        write_bundle(w, m, w->pend_start - o->window_s > 0 ? w->pend_start - o->window_s : 0, t);
    if (w->oom || w->ring.oom)
        signals_stop_requested = 1;
    /* Every second frees as much as it allocates (the span replays, the
     * marks, the reports), in ever different sizes: give the free memory
     * back now and then, or a run of hours keeps its high-water mark plus
     * the fragments (RSS crept up ~8 KB/s with the heap itself flat). */
    if (++w->seconds % 10 == 0)
        malloc_trim(0);
}

/* One attachment's recording: eBPF companions, the sampler until the end,
 * the stop or the target's exec; an incident being recorded is written. */
static int record_attachment(struct watch_state *w, struct run_metrics *m, double *until,
                             struct gp_error *err)
{
    const struct watch_options *opt = w->opt;
    int r = GP_OK;
    metrics_init(m);
    m->stall_ms = opt->stall_ms;
    system_begin(opt->pid, &m->system);
    if (opt->no_bpf) {
        snprintf(m->bpf_note, sizeof m->bpf_note, "eBPF turned off (--no-bpf)");
        snprintf(m->loop_bpf_note, sizeof m->loop_bpf_note, "eBPF turned off (--no-bpf)");
    } else {
        w->gil = gil_exact_start(w->rt, opt->long_hold_ms, false, false, m->bpf_note, sizeof m->bpf_note);
        w->loops = loop_exact_start(opt->pid, opt->stall_ms, m->loop_bpf_note,
                                    sizeof m->loop_bpf_note);
    }
    double left = *until - clock_mono_s();
    struct sampler_options so = {.duration_s = left > 0.001 ? left : 0.001,
                                 .rate_hz = opt->rate_hz,
                                 .stop = &signals_stop_requested,
                                 .no_bpf = opt->no_bpf,
                                 .on_bounds = on_bounds,
                                 .bounds_arg = w,
                                 .on_refresh = on_refresh,
                                 .refresh_arg = w,
                                 .window_s = opt->export_out ? WATCH_EXPORT_WINDOW_S : 1.0,
                                 .on_window = on_window,
                                 .window_arg = w,
                                 .end_window_now = opt->export_out ? &g_window_requested : NULL,
                                 .window_min_s = WATCH_EXPORT_WINDOW_MIN_S,
                                 .prune_exited = true,
                                 .on_sample = on_sample,
                                 .sample_arg = w,
                                 .time_origin = w->origin};
    struct sampler_cost cost = {0};
    r = sampler_run(w->rt, w->cache, &so, m, &cost, err);
    /* An incident being recorded is written with what there is. */
    if (r == GP_OK && w->pending)
        write_bundle(w, m, w->pend_start - opt->window_s > 0 ? w->pend_start - opt->window_s : 0,
                     sample_ring_newest(&w->ring));
    else if (w->pending)
        system_end(opt->pid, &w->pend_system, 0, true);
    w->pending = w->pend_requested = false;
    reap_writer(w, true);
    gil_exact_stop(w->gil);
    loop_exact_stop(w->loops);
    w->gil = NULL;
    w->loops = NULL;
    for (uint32_t i = 0; i < w->nmarks; i++)
        gil_exact_mark_free(w->marks[(w->headmark + i) % w->capmarks].mk);
    w->nmarks = w->headmark = 0;
    system_end(opt->pid, &m->system, 0, true);
    return r;
}

/* After an exec: the new program's Python, once its runtime is there (it
 * may take a moment to start); GP_ERR_NOT_PYTHON when it is not Python. */
static int attach_again(pid_t pid, struct pyrt *rt, struct gp_error *err)
{
    double give_up = clock_mono_s() + WATCH_REATTACH_S;
    for (;;) {
        struct gp_error local = {0};
        int r = cli_attach(pid, rt, &local);
        if (r == GP_OK || (r != GP_ERR_NOT_PYTHON && r != GP_ERR_UNSUPPORTED) ||
            clock_mono_s() >= give_up || signals_stop_requested) {
            *err = local;
            return r;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* What is kept across an exec: the timeline, the bundles, the triggers'
 * cooldowns; the raw samples and the thread records are the old
 * program's, and go. */
static void reset_for_new_program(struct watch_state *w, struct run_metrics *m)
{
    metrics_free(m);
    pyobj_cache_free(w->cache);
    pyobj_cache_init(w->cache);
    double keep_s = w->ring.keep_s;
    sample_ring_free(&w->ring);
    sample_ring_init(&w->ring, keep_s);
    w->ring.origin = w->origin;
}

int cmd_watch(const struct watch_options *opt, struct gp_error *err)
{
    int r = opt->export_out ? GP_OK : bundle_dir_prepare(opt->out_dir, err);
    if (r != GP_OK)
        return r;
    struct pyrt rt;
    r = cli_attach(opt->pid, &rt, err);
    if (r != GP_OK)
        return r;
    signals_catch_stop(true);
    static const int usr1[] = {SIGUSR1}, usr2[] = {SIGUSR2};
    if (!opt->export_out)
        signals_set(usr1, 1, on_usr1, SA_RESTART);
    else
        signals_set(usr2, 1, on_usr2, SA_RESTART); /* serve: "a scrape, send your figures" */
    struct watch_state *w = calloc(1, sizeof *w);
    struct run_metrics *m = calloc(1, sizeof *m);
    struct pyobj_cache cache;
    pyobj_cache_init(&cache);
    if (!w || !m) {
        free(w);
        free(m);
        pyobj_cache_free(&cache);
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory");
        return err->code;
    }
    w->opt = opt;
    w->rt = &rt;
    w->cache = &cache;
    for (size_t i = 0; i < CHECKS_MAX; i++)
        w->last_fired[i] = -INFINITY;
    /* the incident's span: a window before the trigger, half one after,
     * and a second either side for the edges */
    double span_s = opt->window_s * 1.5 + 2;
    sample_ring_init(&w->ring, span_s);
    w->capmarks = (uint32_t)ceil(span_s) + 1;
    w->marks = calloc(w->capmarks, sizeof *w->marks);
    if (!w->marks || (!opt->export_out && timeline_init(&w->tl, opt->keep_s) != 0)) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory");
        r = err->code;
    }
    if (opt->export_out)
        export_line(w, export_target_info(&rt, opt->pid));
    else
        fprintf(stderr, "gilprobe: watching PID %d at %.0f Hz; incidents go to %s/ (SIGUSR1 "
                "writes one now, Ctrl-C ends)\n", opt->pid, opt->rate_hz, opt->out_dir);
    double until = clock_mono_s() + (opt->duration_s > 0 ? opt->duration_s : WATCH_RUN_S);
    const char *ended = "stopped";
    while (r == GP_OK) {
        r = record_attachment(w, m, &until, err);
        ended = m->process_exited && !m->process_execd ? "process exited" : "stopped";
        if (r != GP_OK || !m->process_execd || signals_stop_requested || clock_mono_s() >= until)
            break;
        reset_for_new_program(w, m);
        double at = clock_mono_s() - w->origin;
        struct gp_error again = {0};
        int a = attach_again(opt->pid, &rt, &again);
        if (a != GP_OK) {
            fprintf(stderr, "gilprobe: PID %d replaced its program (exec) after %.0f s and the "
                    "new one is not a Python gilprobe can read (%s); watch ends\n", opt->pid, at,
                    again.msg);
            ended = "process replaced its program";
            metrics_init(m);
            break;
        }
        if (opt->export_out)
            export_line(w, export_target_info(&rt, opt->pid));
        else
            fprintf(stderr, "gilprobe: PID %d replaced its program (exec) after %.0f s: watching "
                    "the new one (Python %s)\n", opt->pid, at, rt.version);
    }
    if (r == GP_OK && (w->oom || w->ring.oom)) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory");
        r = err->code;
    }
    if (r == GP_OK && !opt->export_out)
        fprintf(stderr, "gilprobe: %s after %.0f s; %u incident bundle%s written\n", ended,
                clock_mono_s() - w->origin, w->bundles, w->bundles == 1 ? "" : "s");
    free(w->marks);
    json_object_put(w->fired);
    sample_ring_free(&w->ring);
    timeline_free(&w->tl);
    metrics_free(m);
    pyobj_cache_free(&cache);
    free(m);
    free(w);
    return r;
}
