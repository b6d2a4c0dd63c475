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
struct gil_mark;

/* Attaches; NULL with the reason in why when exact timing is not possible
 * here (not root, no BTF, no take_gil/drop_gil symbols, ...). */
/* force (--bpf): attach even where the probes would be costly. blame:
 * also join each GIL wait with the holds it sat behind (one-shot reports;
 * its cost: docs/performance.md). */
struct gil_exact *gil_exact_start(struct pyrt *rt, double long_hold_ms, bool force, bool blame,
                                  char *why, size_t whysz);
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
/* Long runs (gilprobe watch): every thread's aggregates now, to collect
 * the span between two of them later; NULL when there is no exact timing
 * (g NULL, not started, or out of memory). */
struct gil_mark *gil_exact_mark_take(struct gil_exact *g);
void gil_exact_mark_free(struct gil_mark *mk);
/* Long runs: drops from the kernel's aggregates the threads that are gone
 * and did nothing between `oldest` (the oldest mark still kept) and
 * `newest` (the one just taken): with thread churn, reading them every
 * second would grow without end. */
void gil_exact_forget_dead(struct gil_exact *g, const struct gil_mark *oldest,
                           const struct gil_mark *newest);
/* Into m->exact (empty: see gil_exact_clear): the exact figures of the
 * span between two marks, with the longest holds that ended in it among
 * the latest GIL_RECENT_LONG_HOLDS. */
void gil_exact_collect_span(struct gil_exact *g, const struct gil_mark *from,
                            const struct gil_mark *to, struct pyrt *rt, struct pyobj_cache *c,
                            struct run_metrics *m);
/* Empties m->exact for the next collection. */
void gil_exact_clear(struct run_metrics *m);
/* Detaches everything; safe with NULL. */
void gil_exact_stop(struct gil_exact *g);

#endif
