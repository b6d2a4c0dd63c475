#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analysis/diagnose_children.h"
#include "analysis/figures.h"
#include "commands.h"
#include "ebpf/gil.h"
#include "ebpf/loop.h"
#include "report/pprof.h"
#include "report/common.h"
#include "report/incident_page.h"
#include "report/junit.h"
#include "report/sample.h"
#include "report/stack_exports.h"
#include "target/subprocesses.h"
#include "util/signals.h"
#include "util/clock.h"

static void progress(double elapsed, double duration, uint64_t samples, void *arg)
{
    pid_t pid = *(pid_t *)arg;
    if (duration >= 86400)
        fprintf(stderr, "\rgilprobe: sampling PID %d  %.1f s  %lu samples ", pid, elapsed,
                (unsigned long)samples);
    else
        fprintf(stderr, "\rgilprobe: sampling PID %d  %.1f/%.1f s  %lu samples  (Ctrl-C ends "
                "early) ", pid, elapsed, duration, (unsigned long)samples);
    fflush(stderr);
}

/* What runs beside the sampler, refreshed with each new thread list. */
struct companions {
    struct gil_exact *gil;
    struct loop_exact *loops;
    const struct sample_options *opt;
    pid_t pid;
    struct child_probe probes[SUBPROCESSES_MAX];
    int nprobes;
    unsigned refreshes;
    struct system_view *system; /* read again now and then: see system_observe */
    double started, observed;
};

/* Once a second, the process tree and RSS as they are: if the target exits
 * before the run ends, the report's end figures are these. */
#define SYSTEM_OBSERVE_EVERY_S 1.0

/* Child processes are looked for every other refresh (~5 times a second):
 * often enough for short-lived workers, cheap (a /proc walk). */
static void poll_children(struct companions *c)
{
    if (!c->opt->subprocesses || c->refreshes++ % 2)
        return;
    c->nprobes = subprocesses_poll(c->pid, c->opt->duration_s, c->opt->rate_hz, c->probes,
                                   c->nprobes, SUBPROCESSES_MAX);
}

/* The exact GIL figures cover the sampled window, not the set-up around it. */
static void on_bounds(bool end, double at, void *arg)
{
    struct companions *c = arg;
    gil_exact_mark(c->gil, end, at);
}

static void on_refresh(const struct snapshot *snap, void *arg)
{
    struct companions *c = arg;
    gil_exact_update(c->gil, snap);
    loop_exact_poll(c->loops);
    poll_children(c);
    double now = clock_mono_s();
    if (c->system && now - c->observed >= SYSTEM_OBSERVE_EVERY_S) {
        c->observed = now;
        system_observe(c->pid, c->system, now - c->started);
    }
}

/* The report, and its JSON document: built once, for the checks and the
 * JSON output alike (NULL when neither needs it). */
struct full_report {
    const struct sample_report *rep;
    const struct sample_options *opt;
    json_object *doc;
};

static int as_json(FILE *out, const void *arg)
{
    const struct full_report *f = arg;
    json_object *doc = json_object_get(f->doc); /* report_json_write releases it */
    if (f->opt->nchecks)
        json_object_object_add(doc, "checks", checks_json(f->opt->checks, f->opt->nchecks));
    return report_json_write(out, doc);
}

static void as_text(FILE *out, const void *arg)
{
    report_sample_text(out, ((const struct full_report *)arg)->rep);
}

/* Check results after the report, where a CI log's reader looks last:
 * stderr lines, GitHub annotations, --junit. */
static int publish_checks(const struct sample_options *opt, const struct sample_report *rep,
                          struct gp_error *err)
{
    if (!opt->nchecks)
        return GP_OK;
    checks_print(stderr, opt->checks, opt->nchecks);
    const char *gha = getenv("GITHUB_ACTIONS");
    if (gha && strcmp(gha, "true") == 0)
        github_annotations(stderr, opt->checks, opt->nchecks);
    if (opt->junit) {
        int r = junit_write(opt->junit, rep->cmdline[0] ? rep->cmdline : "process", opt->checks,
                            opt->nchecks, rep->m->duration_s, err);
        if (r != GP_OK)
            return r;
    }
    return checks_failed(opt->checks, opt->nchecks) ? GP_CHECKS_FAILED : GP_OK;
}

/* --collapsed, --speedscope and --pprof. */
static int write_stack_files(const struct sample_options *opt, const struct run_metrics *m,
                             struct gp_error *err)
{
    struct stack_exports x = {opt->pid, opt->collapsed_path, opt->speedscope_path,
                              opt->state_mask};
    int r = report_stacks_write(m, &x, err);
    if (r == GP_OK && opt->pprof_path)
        r = report_pprof_write(m, opt->pprof_path, err);
    return r;
}

int sample_attached(const struct sample_options *opt, struct pyrt *rt, const struct sample_driver *d,
                    struct gp_error *err)
{
    struct sample_report rep = {.command = d->command, .pid = opt->pid, .rt = rt};
    proc_cmdline(opt->pid, rep.cmdline, sizeof rep.cmdline);
    struct run_metrics m;
    struct sampler_cost cost = {0};
    struct pyobj_cache cache;
    metrics_init(&m);
    m.stall_ms = opt->stall_ms;
    m.no_asyncio = opt->no_asyncio;
    pyobj_cache_init(&cache);
    pid_t pid = opt->pid;
    struct companions *comp = calloc(1, sizeof *comp);
    if (!comp) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory");
        return err->code;
    }
    comp->opt = opt;
    comp->pid = pid;
    if (opt->no_bpf) {
        snprintf(m.bpf_note, sizeof m.bpf_note, "eBPF turned off (--no-bpf)");
        snprintf(m.loop_bpf_note, sizeof m.loop_bpf_note, "eBPF turned off (--no-bpf)");
    } else {
        comp->gil = gil_exact_start(rt, opt->long_hold_ms, opt->force_bpf, !opt->no_blame, m.bpf_note,
                                    sizeof m.bpf_note);
        comp->loops = loop_exact_start(opt->pid, opt->stall_ms, m.loop_bpf_note,
                                       sizeof m.loop_bpf_note);
    }
    struct sampler_options so = {.duration_s = opt->duration_s,
                                 .rate_hz = opt->rate_hz,
                                 .stop = d->stop,
                                 .no_bpf = opt->no_bpf,
                                 .no_asyncio = opt->no_asyncio,
                                 .progress = isatty(STDERR_FILENO) && d->report_out == stdout
                                                 ? progress
                                                 : NULL,
                                 .progress_arg = &pid,
                                 .on_bounds = on_bounds,
                                 .bounds_arg = comp,
                                 .on_refresh = on_refresh,
                                 .refresh_arg = comp};
    system_begin(opt->pid, &m.system);
    comp->system = &m.system;
    comp->started = comp->observed = clock_mono_s();
    poll_children(comp);
    if (d->before_sampling)
        d->before_sampling(d->arg);
    /* Outlives the report: its pseudo code objects are in the stacks. */
    struct native_sampling native = {0};
    int r = GP_OK;
    if (opt->native) {
        r = native_open(opt->pid, false, &native.ns, err);
        so.native = &native;
    }
    if (r == GP_OK)
        r = sampler_run(rt, &cache, &so, &m, &cost, err);
    if (d->target_exited && *d->target_exited) {
        m.process_exited = true;
        m.interrupted = false;
    }
    system_end(opt->pid, &m.system, m.duration_s, m.process_exited);
    struct json_object *child_reports[SUBPROCESSES_MAX] = {0};
    /* Children still running are told to report what they saw so far. */
    subprocesses_finish(comp->probes, comp->nprobes, true, child_reports);
    rep.children = child_reports;
    rep.nchildren = comp->nprobes;
    if (r == GP_OK) {
        gil_exact_collect(comp->gil, rt, &cache, &m);
        loop_exact_collect(comp->loops, &m);
    }
    gil_exact_stop(comp->gil);
    loop_exact_stop(comp->loops);
    if (so.progress)
        fprintf(stderr, "\r%*s\r", 78, "");
    if (r == GP_OK && m.samples_taken == 0) {
        gp_error_set(err, GP_ERR_EXITED,
                     "process %d exited before gilprobe could take a sample; nothing to report",
                     opt->pid);
        r = err->code;
    }
    struct diagnosis *diag = calloc(1, sizeof *diag);
    if (r == GP_OK && !diag) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory");
        r = err->code;
    }
    if (r == GP_OK) {
        metrics_finish(&m);
        diagnose(&m, diag);
        diagnose_add_children(diag, child_reports, comp->nprobes);
        rep.diag = diag;
        rep.m = &m;
        rep.cost = &cost;
        struct full_report full = {&rep, opt,
                                   opt->json || opt->nchecks ? report_sample_doc(&rep) : NULL};
        /* --fail-on before the report is written: the JSON report carries
         * the results. */
        if (opt->nchecks)
            checks_evaluate(opt->checks, opt->nchecks, full.doc);
        r = report_write_to(d->report_out, opt->output, opt->json, as_json, as_text, &full, err);
        if (r == GP_OK && opt->html_path) {
            json_object *doc = full.doc ? json_object_get(full.doc) : report_sample_doc(&rep);
            r = report_incident_page(opt->html_path, doc, NULL, &m, err);
            json_object_put(doc);
        }
        json_object_put(full.doc);
        if (r == GP_OK)
            r = write_stack_files(opt, &m, err);
        if (r == GP_OK)
            r = publish_checks(opt, &rep, err);
    }
    free(diag);
    for (int i = 0; i < comp->nprobes; i++)
        if (child_reports[i])
            json_object_put(child_reports[i]);
    free(comp);
    metrics_free(&m);
    native_sampling_free(&native);
    pyobj_cache_free(&cache);
    return r;
}

int cmd_sample(const struct sample_options *opt, struct gp_error *err)
{
    struct pyrt rt;
    int r = cli_attach(opt->pid, &rt, err);
    if (r != GP_OK)
        return r;
    signals_catch_stop(false); /* Ctrl-C, SIGTERM: end early, still report */
    struct sample_driver d = {.command = "sample", .report_out = stdout, .stop = &signals_stop_requested};
    return sample_attached(opt, &rt, &d, err);
}
