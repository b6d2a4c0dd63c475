/* The sampled stacks for flame-graph tools: folded stacks (flamegraph.pl,
 * inferno; --collapsed) and speedscope's JSON (--speedscope), per thread
 * and per state, optionally only some states (--state). */
#ifndef GILPROBE_REPORT_STACKS_H
#define GILPROBE_REPORT_STACKS_H
#include <stddef.h>
#include <sys/types.h>

#include "record/metrics.h"
#include "util/errors.h"

/* Adds the states named in a comma list ("gil-wait,io_wait": the JSON keys,
 * dashes or underscores) to *mask as bits 1u << enum tstate_kind. 0, or -1
 * with a one-line usage message in msg naming the valid states. */
int report_stacks_parse_states(const char *list, unsigned *mask, char *msg, size_t sz);

struct stack_exports {
    pid_t pid;
    const char *collapsed_path;  /* --collapsed: folded stacks, or NULL */
    const char *speedscope_path; /* --speedscope: speedscope JSON, or NULL */
    unsigned state_mask;         /* --state: 1u << enum tstate_kind; 0 = all */
};

/* Writes the files x names. GP_OK, or GP_ERR_OUTPUT / GP_ERR_INTERNAL
 * with err filled. */
int report_stacks_write(const struct run_metrics *m, const struct stack_exports *x,
                        struct gp_error *err);

#endif
