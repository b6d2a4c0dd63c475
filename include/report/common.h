/* Pieces shared by every report: the Python header, frames, JSON output. */
#ifndef GILPROBE_REPORT_COMMON_H
#define GILPROBE_REPORT_COMMON_H
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "python/pyrt.h"
#include "python/stackwalk.h"
#include "record/stacks.h"

/* Why a figure of a version read through its _Py_DebugOffsets is missing. */
#define REPORT_UNPUBLISHED "not published by this version's _Py_DebugOffsets"
/* The warning for a version gilprobe has no table for (rt->unknown_version). */
#define REPORT_UNTESTED_FMT                                                                  \
    "Python %s is a version this gilprobe was not tested on (tested: %s); it is read through " \
    "the process's own _Py_DebugOffsets, and what they do not publish (GIL hand-offs, the "  \
    "switch interval) is not measured"

const char *report_runtime_kind(const struct pyrt *rt);
/* "Python 3.12.1 (libpython shared /path, with symbols)" */
void report_python_line(FILE *out, const struct pyrt *rt);
json_object *report_json_python(const struct pyrt *rt);
json_object *report_json_hex(uint64_t v); /* NULL (JSON null) for 0 */
/* Adds "python_name" (null for "") and "python_name_unavailable" (why,
 * null when there is a name) to a thread's object. */
void report_json_python_name(json_object *thread, const char *python_name, const char *why);
json_object *report_json_frame(const struct py_frame *f);
json_object *report_json_frames(const struct py_frame *f, int n);
/* A stack as one place in the code, as JSON (stack_site_text in
 * record/stacks.h is the text): its innermost Python frame, with "native"
 * holding the C one above it; NULL for an empty stack. */
json_object *report_json_site(const struct stack_entry *e);
/* Pretty-prints and releases root; 0 or -1 on write failure. */
int report_json_write(FILE *out, json_object *root);

struct gp_error;
/* Writes a report to `path` (NULL: standard output) as JSON or text.
 * GP_OK or GP_ERR_OUTPUT with err filled. */
int report_write(const char *path, bool json, int (*as_json)(FILE *, const void *),
                 void (*as_text)(FILE *, const void *), const void *report, struct gp_error *err);
/* The same, with `dflt` instead of standard output when path is NULL. */
int report_write_to(FILE *dflt, const char *path, bool json, int (*as_json)(FILE *, const void *),
                    void (*as_text)(FILE *, const void *), const void *report,
                    struct gp_error *err);

#endif
