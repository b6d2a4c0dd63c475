/* `gilprobe -p PID`: the sampled GIL / threads / locks report. */
#ifndef GILPROBE_SAMPLE_REPORT_H
#define GILPROBE_SAMPLE_REPORT_H
#include <stdbool.h>
#include <json-c/json.h>
#include <stdio.h>

#include "analysis/diagnose.h"
#include "python/pyrt.h"
#include "record/metrics.h"
#include "sample/sampler.h"
#include "util/errors.h"

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
    /* Only what the --fail-on metrics read (no stacks, no per-thread exact
     * distributions): watch evaluates its triggers on this every second. */
    bool figures_only;
};

void report_sample_text(FILE *out, const struct sample_report *r);
json_object *report_sample_doc(const struct sample_report *r);

#endif
