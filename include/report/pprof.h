/* The run's sampled stacks as a gzipped pprof profile (--pprof FILE, and
 * `serve`'s /debug/pprof/profile): sample types samples, gil_held and
 * gil_wait (counts), labels thread, state and tid. */
#ifndef GILPROBE_REPORT_PPROF_H
#define GILPROBE_REPORT_PPROF_H
#include "record/metrics.h"
#include "util/errors.h"

/* To path ("-": standard output). GP_OK, or an error code with err filled. */
int report_pprof_write(const struct run_metrics *m, const char *path, struct gp_error *err);

#endif
