/* What one second of `gilprobe watch` saw, as a record for `gilprobe
 * serve`: seconds spent (held, waiting, per state, per lock site, per loop)
 * and counts (samples, acquisitions, hand-offs, exact histogram buckets),
 * never ratios, so that the server can add them up into counters. One JSON
 * object a line, written by the collector process of a target, read by the
 * server (report/fleet.h). */
#ifndef GILPROBE_EXPORT_RECORD_H
#define GILPROBE_EXPORT_RECORD_H
#include <json-c/json.h>

#include "analysis/diagnose.h"
#include "python/pyrt.h"
#include "record/metrics.h"

/* The first line a collector writes: what the target is. */
json_object *export_target_info(const struct pyrt *rt, pid_t pid);

/* One window's figures (metrics_window_finish done; m->exact the
 * window's exact figures when valid) over window_s seconds. */
json_object *export_window(const struct run_metrics *m, double window_s);
/* {"findings": [{"scenario", "severity"}...]}: what holds over the last
 * --window seconds. */
json_object *export_findings(const struct diagnosis *d);

#endif
