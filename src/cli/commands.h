/* The commands (`-p`, `run`, `dump`, `top`): their options as the command
 * line fills them and their entry points. Private to the cli layer: main.c
 * parses, each command file runs one. */
#ifndef GILPROBE_COMMANDS_H
#define GILPROBE_COMMANDS_H
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "analysis/checks.h"
#include "python/pyrt.h"
#include "report/top_view.h"
#include "util/errors.h"

struct sample_options {
    pid_t pid;
    double duration_s;
    double rate_hz;
    bool json;
    bool no_bpf;
    bool force_bpf;      /* --bpf: exact GIL probes even where they are costly */
    bool no_blame;       /* --no-blame: no exact GIL blame in the kernel */
    bool no_asyncio;     /* --no-asyncio: no reads of asyncio's tasks and timers */
    bool native;         /* --native: mixed native/Python stacks */
    double long_hold_ms; /* holds this long are reported with their stack */
    double stall_ms;     /* event-loop stall threshold */
    bool subprocesses;   /* sample Python child processes too */
    const char *output;
    struct check *checks; /* --fail-on */
    size_t nchecks;
    const char *junit;    /* --junit FILE */
    const char *collapsed_path;  /* --collapsed: folded stacks */
    const char *speedscope_path; /* --speedscope: speedscope JSON */
    const char *pprof_path;      /* --pprof: gzipped pprof profile ("-": stdout) */
    unsigned state_mask;         /* --state: 1u << enum tstate_kind; 0 = all */
    const char *html_path;       /* --html: the report as an HTML page */
};

/* How `run` drives a sampling session that `-p` drives by itself. */
struct sample_driver {
    const char *command;                 /* "run" */
    FILE *report_out;                    /* without -o (standard error for run) */
    volatile sig_atomic_t *stop;         /* ends the sampling */
    volatile sig_atomic_t *target_exited; /* set when the stop was the target's exit */
    void (*before_sampling)(void *arg);  /* everything is attached: let it run */
    void *arg;
};

/* `gilprobe -p`: GP_OK, an error exit code, or GP_CHECKS_FAILED. */
int cmd_sample(const struct sample_options *opt, struct gp_error *err);
/* The same for an attached runtime, driven by d. */
int sample_attached(const struct sample_options *opt, struct pyrt *rt, const struct sample_driver *d,
                    struct gp_error *err);

/* `gilprobe run [options] -- COMMAND ARGS...`: the program's exit code
 * (128+N when killed by signal N), or GP_CHECKS_FAILED, or gilprobe's error
 * code (err filled and printed). */
int cmd_run(struct sample_options *opt, char **argv, struct gp_error *err);

struct dump_options {
    pid_t pid;
    bool json;
    bool blocking;
    bool stats;         /* cost of the read on stderr */
    bool native;        /* C stacks merged with the Python ones */
    bool tasks;         /* asyncio tasks too */
    const char *output; /* NULL: stdout */
};

int cmd_dump(const struct dump_options *opt, struct gp_error *err);

#define TOP_DEFAULT_INTERVAL_S 1.0

struct top_options {
    pid_t pid;
    double interval_s;
    double rate_hz;
    enum top_sort sort;
    bool no_bpf;
    long iterations; /* intervals to show; 0: until the process exits or a signal */
    const char *thread; /* --thread: the thread first explained (TID or name) */
};

int cmd_top(const struct top_options *opt, struct gp_error *err);

#define WATCH_DEFAULT_HZ 100.0
/* After the target execs: how long its new program may take to start a
 * Python runtime before the watch ends. */
#define WATCH_REATTACH_S 5.0
#define WATCH_DEFAULT_WINDOW_S 10.0
#define WATCH_DEFAULT_KEEP_S 600.0
#define WATCH_DEFAULT_COOLDOWN_S 20.0
#define WATCH_DEFAULT_OUT "gilprobe-incidents"

struct watch_options {
    pid_t pid;
    double rate_hz;
    double duration_s;     /* 0: until stopped or the target exits */
    struct check *triggers; /* --trigger: --fail-on expressions */
    size_t ntriggers;
    const char *out_dir;   /* --out */
    double window_s;       /* triggers look at this many seconds; raw samples kept */
    double keep_s;         /* timeline length */
    double cooldown_s;     /* before the same trigger fires again */
    bool no_bpf;
    double stall_ms;
    double long_hold_ms;
    /* `gilprobe serve`'s collector: instead of incidents, one JSON line a
     * second on this stream (report/export_record.h): the target's info
     * first (again after an exec), then each second's figures, with the
     * findings over the last window every window_s seconds. No bundles, no
     * triggers, nothing on stderr but errors. */
    FILE *export_out;
};

/* `gilprobe watch`: GP_OK when stopped or when the target exited, or an
 * error exit code. */
int cmd_watch(const struct watch_options *opt, struct gp_error *err);

#define SERVE_DEFAULT_LISTEN "127.0.0.1:9464"
/* 50 targets at 0.5 Hz: 1.25% of a core (bench/bench_serve.py; 1 Hz:
 * 2.2%). The GIL, loop-stall and hold/wait figures are exact (eBPF) at
 * any rate; the rate sets how finely thread states and lock waits are
 * sampled. */
#define SERVE_DEFAULT_HZ 0.5
#define SERVE_MAX_PIDS 256
/* --all looks for new Python processes this often */
#define SERVE_DISCOVER_EVERY_S 3.0

struct serve_options {
    const char *listen;     /* ADDR:PORT ([v6]:PORT) */
    pid_t pids[SERVE_MAX_PIDS];
    size_t npids;
    bool all;               /* every CPython process of the host */
    const char *match;      /* --all: only command lines matching this ERE */
    const char *exclude;    /* --all: not those matching this one */
    double rate_hz;
    double window_s;        /* findings hold over this many seconds */
    double duration_s;      /* 0: until stopped */
    bool no_bpf;
    const char *tls_cert, *tls_key;
    const char *auth_file;  /* "Bearer TOKEN" and "user:password" lines */
};

/* `gilprobe serve`: GP_OK when stopped, or an error exit code. */
int cmd_serve(const struct serve_options *opt, struct gp_error *err);

/* pyrt_attach, and the warning line for a version read through its own
 * _Py_DebugOffsets (cli/attach.c). */
int cli_attach(pid_t pid, struct pyrt *rt, struct gp_error *err);

#endif
