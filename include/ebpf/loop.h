/* Exact event-loop stall durations with eBPF (bpf/loop.bpf.c): the time
 * each thread spends between leaving its selector's wait syscall and
 * entering it again, measured in the kernel. */
#ifndef GILPROBE_LOOP_EXACT_H
#define GILPROBE_LOOP_EXACT_H
#include <stddef.h>
#include <sys/types.h>

#include "record/metrics.h"

struct loop_exact;

/* NULL with the reason in why when it cannot run here. */
struct loop_exact *loop_exact_start(pid_t pid, double stall_ms, char *why, size_t whysz);
/* Drains the stall events; call periodically. */
void loop_exact_poll(struct loop_exact *le);
/* Hands each loop thread its exact stalls (m->threads[].loop.exact_*). */
void loop_exact_collect(struct loop_exact *le, struct run_metrics *m);
/* Long runs (gilprobe watch): the same for the stalls that ended in
 * [from_ns, to_ns] (CLOCK_MONOTONIC), and the events before keep_from_ns
 * dropped for good (memory bounded by the span kept, not the run). */
void loop_exact_collect_span(struct loop_exact *le, uint64_t from_ns, uint64_t to_ns,
                             struct run_metrics *m);
void loop_exact_forget_before(struct loop_exact *le, uint64_t keep_from_ns);
void loop_exact_stop(struct loop_exact *le);

#endif
