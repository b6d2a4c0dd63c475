/* Incident bundles (gilprobe watch): a directory per incident, written
 * whole or not at all (into a hidden temporary directory, renamed into
 * place when complete), and DIR/index.json listing every bundle. */
#ifndef GILPROBE_BUNDLE_H
#define GILPROBE_BUNDLE_H
#include <json-c/json.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "record/timeline.h"
#include "report/sample.h"
#include "util/errors.h"

#define BUNDLE_TMP_PREFIX ".gilprobe-tmp-"

struct bundle_input {
    const char *dir;                /* --out */
    pid_t pid;
    unsigned seq;                   /* n-th bundle of this watch, from 1 */
    time_t when;                    /* when it is written (its name) */
    const struct sample_report *rep; /* over the incident's samples */
    json_object *triggers;          /* [{"expr", "measured", "at", "t"}], not consumed */
    const struct timeline *tl;      /* the whole kept timeline */
    /* sample times: what was recorded of the incident, and the stretch of
     * it the report covers */
    double span_from, span_to, focus_from, focus_to;
};

/* The timeline as JSON: {"interval_s", "seconds": [...], "marks": [{"t",
 * "label"}]} with a mark for each trigger in `triggers` (may be NULL). */
json_object *bundle_timeline_json(const struct timeline *tl, json_object *triggers);
/* {"span": {"from", "to"}, "focus": {"from", "to"}}: sample times. */
json_object *bundle_incident_json(const struct bundle_input *in);
/* Writes the bundle; its path into path. GP_OK, or GP_ERR_OUTPUT with err
 * filled (nothing left behind: the temporary directory is removed). */
int bundle_write(const struct bundle_input *in, char *path, size_t pathsz, struct gp_error *err);
/* Ready to receive bundles: DIR made if missing and writable, temporary
 * directories a killed watch left behind removed. GP_OK or GP_ERR_OUTPUT. */
int bundle_dir_prepare(const char *dir, struct gp_error *err);

#endif
