/* The incident page: one self-contained HTML file (inline CSS, JS and SVG;
 * no network) with the timeline chart, a flame graph of the window split by
 * thread state, the per-thread table and the Diagnosis. Written into every
 * `watch` bundle (index.html) and by `-p --html FILE`. */
#ifndef GILPROBE_INCIDENT_PAGE_H
#define GILPROBE_INCIDENT_PAGE_H
#include <json-c/json.h>

#include "record/metrics.h"
#include "util/errors.h"

/* report: the -p --json document (with "trigger" for a bundle); timeline:
 * the bundle's timeline.json document, or NULL (one-shot report); m: the
 * metrics the report was made of (their stacks make the flame graph).
 * GP_OK, or GP_ERR_OUTPUT with err filled. */
int report_incident_page(const char *path, json_object *report, json_object *timeline,
                         const struct run_metrics *m, struct gp_error *err);

#endif
