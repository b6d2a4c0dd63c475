#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gil_exact.h"
#include "loop_exact.h"
#include "report_common.h"
#include "report_stacks.h"
#include "sample_report.h"
#include "subprocesses.h"

static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Ctrl-C and SIGTERM end the run early; the report is still printed. */
static void install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void progress(double elapsed, double duration, uint64_t samples, void *arg)
{
    pid_t pid = *(pid_t *)arg;
    fprintf(stderr, "\rgilprobe: sampling PID %d  %.1f/%.1f s  %lu samples  (Ctrl-C ends early) ",
            pid, elapsed, duration, (unsigned long)samples);
    fflush(stderr);
}

struct exact_backends {
    struct gil_exact *gil;
    struct loop_exact *loops;
};

static void refresh_exact(const struct snapshot *snap, void *arg)
{
    struct exact_backends *b = arg;
    gil_exact_update(b->gil, snap);
    loop_exact_poll(b->loops);
}

static int as_json(FILE *out, const void *report)
{
    return report_sample_json(out, report);
}

static void as_text(FILE *out, const void *report)
{
    report_sample_text(out, report);
}

int cmd_sample(const struct sample_options *opt, struct gp_error *err)
{
    struct pyrt rt;
    int r = pyrt_attach(opt->pid, &rt, err);
    if (r != GP_OK)
        return r;
    install_stop_handlers();
    struct sample_report rep = {.pid = opt->pid, .rt = &rt};
    proc_cmdline(opt->pid, rep.cmdline, sizeof rep.cmdline);
    struct run_metrics m;
    struct sampler_cost cost = {0};
    struct pyobj_cache cache;
    metrics_init(&m);
    m.stall_ms = opt->stall_ms;
    pyobj_cache_init(&cache);
    pid_t pid = opt->pid;
    struct exact_backends exact = {NULL, NULL};
    if (opt->no_bpf) {
        snprintf(m.bpf_note, sizeof m.bpf_note, "eBPF turned off (--no-bpf)");
        snprintf(m.loop_bpf_note, sizeof m.loop_bpf_note, "eBPF turned off (--no-bpf)");
    } else {
        exact.gil = gil_exact_start(&rt, opt->long_hold_ms, m.bpf_note, sizeof m.bpf_note);
        exact.loops = loop_exact_start(opt->pid, opt->stall_ms, m.loop_bpf_note,
                                       sizeof m.loop_bpf_note);
    }
    struct sampler_options so = {.duration_s = opt->duration_s,
                                 .rate_hz = opt->rate_hz,
                                 .stop = &g_stop,
                                 .no_bpf = opt->no_bpf,
                                 .progress = isatty(STDERR_FILENO) ? progress : NULL,
                                 .progress_arg = &pid,
                                 .on_refresh = refresh_exact,
                                 .refresh_arg = &exact};
    system_begin(opt->pid, &m.system);
    struct child_probe probes[SUBPROCESSES_MAX];
    struct json_object *child_reports[SUBPROCESSES_MAX] = {0};
    int nprobes = opt->subprocesses ? subprocesses_start(opt->pid, opt->duration_s, opt->rate_hz,
                                                         probes, SUBPROCESSES_MAX)
                                    : 0;
    r = sampler_run(&rt, &cache, &so, &m, &cost, err);
    system_end(opt->pid, &m.system, m.duration_s);
    subprocesses_finish(probes, nprobes, g_stop || m.process_exited, child_reports);
    rep.children = child_reports;
    rep.nchildren = nprobes;
    if (r == GP_OK) {
        gil_exact_collect(exact.gil, &rt, &cache, &m);
        loop_exact_collect(exact.loops, &m);
    }
    gil_exact_stop(exact.gil);
    loop_exact_stop(exact.loops);
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
        rep.diag = diag;
        rep.m = &m;
        rep.cost = &cost;
        r = report_write(opt->output, opt->json, as_json, as_text, &rep, err);
        if (r == GP_OK)
            r = report_stacks_write(&m, opt, err);
    }
    free(diag);
    for (int i = 0; i < nprobes; i++)
        if (child_reports[i])
            json_object_put(child_reports[i]);
    metrics_free(&m);
    pyobj_cache_free(&cache);
    return r;
}
