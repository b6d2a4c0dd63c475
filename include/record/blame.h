/* GIL blame: whom a thread's GIL wait was spent behind. Each entry is one
 * (holder thread, holder's innermost Python function) pair and the wait
 * charged to it, from samples (a waiting thread charged to the holder of
 * the same sample) or exact (a wait interval joined in the kernel with the
 * hold intervals it overlapped). */
#ifndef GILPROBE_BLAME_H
#define GILPROBE_BLAME_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "python/frame.h"

/* Entries kept per waiting thread: past this many pairs the least
 * charged ones are folded into one "other holders" entry (holder 0), so a
 * thread that waits behind hundreds of short-lived threads stays bounded. */
#define BLAME_MAX_ENTRIES 32

struct blame_entry {
    pid_t holder_tid;        /* 0: unknown (the GIL changing hands, or folded) */
    uint64_t code_addr;      /* the holder's innermost function; 0: none seen */
    struct code_info *code;  /* resolved (cache-owned), NULL when unknown */
    uint64_t count;          /* samples, or exact overlapping holds */
    double ms;               /* exact: measured; sampled: filled by blame_finish */
};

struct blame_list {
    struct blame_entry *v;
    uint32_t n, cap;
    /* derived by blame_finish */
    double total_ms; /* of the entries (unknown holders included) */
};

/* Adds `count` and `ms` to the (holder, code) entry. */
void blame_add(struct blame_list *l, pid_t holder, uint64_t code_addr, struct code_info *code,
               uint64_t count, double ms);
/* Sampled lists: each count is worth `ms_per_sample`; sorts by ms,
 * largest first, and sums the total. Exact lists: ms_per_sample 0. */
void blame_finish(struct blame_list *l, double ms_per_sample);
/* The share (%) of the list's total charged to entries matching `pred`. */
double blame_share(const struct blame_list *l, int (*pred)(const struct blame_entry *, void *),
                   void *arg);
void blame_clear(struct blame_list *l);
void blame_free(struct blame_list *l);
/* "func (file:line)" of the entry's function at its first line; "" when
 * unknown. */
void blame_site_text(const struct blame_entry *e, char *buf, size_t sz);

#endif
