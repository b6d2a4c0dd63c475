/* --native in the sampler: each sampled thread is stopped alone for its
 * unwind, its Python stack re-read meanwhile, and the merged stack is what
 * the sample records; the pauses this imposes are accounted here. */
#ifndef GILPROBE_NATIVE_SAMPLE_H
#define GILPROBE_NATIVE_SAMPLE_H
#include <stdint.h>

#include "native/unwind.h"
#include "python/classify.h"
#include "python/pyrt.h"
#include "record/stacks.h"

struct native_sampling {
    struct native_session *ns;
    uint64_t *pauses;  /* ns, one per unwind: stop requested to resumed */
    uint64_t *stopped; /* ns, the same from the stop seen */
    size_t n, cap;
    uint64_t this_sample, sample_max, total;
    uint64_t failed, disagree, compared;
    int fatal;               /* an exit code that ends the run (permission) */
    struct gp_error err;
    struct py_frame *buf;
    int bufcap;
};

struct native_pause_stats {
    uint64_t unwinds, failed, disagree, compared;
    double total_ms, p50_us, p99_us, max_us; /* per thread stop */
    double stopped_p50_us, stopped_p99_us, stopped_max_us; /* from the stop seen */
    double sample_max_us;                    /* all threads of one sample */
};

/* The id of tid's mixed stack in t, or `fallback` when it could not be
 * unwound (its Python-only stack). kind: the syscall-based classification,
 * checked against the stack's. */
uint32_t native_sample_thread(struct native_sampling *n, struct pyrt *rt, struct pyobj_cache *c,
                              struct stack_table *t, pid_t tid, uint64_t tstate,
                              enum block_kind kind, uint32_t fallback);
/* A sample is complete (its pause counts towards the worst sample). */
void native_sample_done(struct native_sampling *n);
void native_sampling_stats(const struct native_sampling *n, struct native_pause_stats *out);
void native_sampling_free(struct native_sampling *n);

#endif
