/* GIL blame in the reports: whom each thread's GIL wait was spent behind
 * (analysis/blame_roles.h), as JSON fields of a thread, as the text
 * report's "waits behind" lines, and as one line for `top`. */
#ifndef GILPROBE_BLAME_REPORT_H
#define GILPROBE_BLAME_REPORT_H
#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>

#include "analysis/diagnose.h"
#include "record/metrics.h"

/* Entries shown per thread (JSON and text). */
#define BLAME_REPORT_ENTRIES 8

/* Adds gil_wait_blame, gil_wait_blame_source, gil_wait_blame_sampled,
 * gil_wait_caused_ms, role to a thread's JSON object. */
void report_thread_blame_json(json_object *o, const struct run_metrics *m,
                              const struct thread_metrics *t);
/* The threads that waited most, each with whom it waited behind. */
void report_blame_text(FILE *out, const struct run_metrics *m);
/* "waits behind 1234 crunch-0 in crunch_regex (a.py:3) 61%, ..." */
void report_blame_line(char *buf, size_t sz, const struct run_metrics *m,
                       const struct thread_metrics *t);
/* A holder's name as reports show it: its Python name, else its OS name
 * (NULL when the thread is unknown). */
const char *report_holder_name(const struct run_metrics *m, pid_t tid);
const char *report_role_name(enum thread_role r); /* NULL for none */
/* A finding's "victims", "aggressors" (S2 with latency-sensitive waiters)
 * and "convoy" (the convoy effect), null when it has none. */
void report_finding_blame_json(json_object *j, const struct run_metrics *m,
                               const struct finding *f);

#endif
