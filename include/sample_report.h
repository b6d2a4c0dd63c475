/* `gilprobe -p PID`: the sampled GIL / threads / locks report. */
#ifndef GILPROBE_SAMPLE_REPORT_H
#define GILPROBE_SAMPLE_REPORT_H
#include <stdbool.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>

#include "checks.h"
#include "diagnose.h"
#include "errors.h"
#include "metrics.h"
#include "pyrt.h"
#include "sampler.h"

#define SAMPLE_SCHEMA_VERSION 1
#define REPORT_TOP_STACKS 3

struct sample_report {
    const char *command; /* "sample" (NULL) or "run" */
    pid_t pid;
    char cmdline[1024];
    const struct pyrt *rt;
    const struct run_metrics *m;
    const struct sampler_cost *cost;
    const struct diagnosis *diag;
    struct json_object **children; /* --subprocesses: each child's report */
    int nchildren;
};

struct sample_options {
    pid_t pid;
    double duration_s;
    double rate_hz;
    bool json;
    bool no_bpf;
    bool force_bpf;      /* --bpf: exact GIL probes even where they are costly */
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
    unsigned state_mask;         /* --state: 1u << enum tstate_kind; 0 = all */
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
void report_sample_text(FILE *out, const struct sample_report *r);
json_object *report_sample_doc(const struct sample_report *r);

#endif
