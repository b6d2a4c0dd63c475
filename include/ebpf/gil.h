/* The eBPF backend for exact GIL timings (bpf/gil.bpf.c): uprobes on
 * take_gil/drop_gil of the target's runtime, per-thread aggregates in the
 * kernel, long holds with their Python stacks through a ring buffer. */
#ifndef GILPROBE_GIL_EXACT_H
#define GILPROBE_GIL_EXACT_H
#include <stdbool.h>
#include <stddef.h>

#include "python/pyobj.h"
#include "python/pyrt.h"
#include "python/snapshot.h"
#include "record/metrics.h"

struct gil_exact;

/* Attaches; NULL with the reason in why when exact timing is not possible
 * here (not root, no BTF, no take_gil/drop_gil symbols, ...). */
/* force (--bpf): attach even where the probes would be costly. */
struct gil_exact *gil_exact_start(struct pyrt *rt, double long_hold_ms, bool force, char *why,
                                  size_t whysz);
/* Tells the kernel side which thread state each TID has (for stacks of
 * long holds) and drains the long-hold events; call periodically. */
void gil_exact_update(struct gil_exact *g, const struct snapshot *snap);
/* Marks where the sampled window starts (end false) or ends (end true), at
 * `at` (CLOCK_MONOTONIC seconds; the aggregates are read now, a moment
 * later):
 * the exact figures then cover the same stretch of time as the samples,
 * not the set-up and tear-down around them (seconds on a loaded machine:
 * 11 s of probes around 3 s of samples was measured). Safe with NULL. */
void gil_exact_mark(struct gil_exact *g, bool end, double at);
/* Reads the aggregates into m->exact (stacks resolved with c, interned in
 * m->stacks). */
void gil_exact_collect(struct gil_exact *g, struct pyrt *rt, struct pyobj_cache *c,
                       struct run_metrics *m);
/* Detaches everything; safe with NULL. */
void gil_exact_stop(struct gil_exact *g);

#endif
