/* Interned Python stacks: each distinct stack is stored once and known by a
 * small id, so samples and counters carry ids instead of frame lists. */
#ifndef GILPROBE_STACKS_H
#define GILPROBE_STACKS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "python/frame.h"

#define STACK_NONE 0u /* id of the empty stack */

struct stack_entry {
    uint64_t hash;
    int nframes;
    struct py_frame *frames; /* innermost first */
};

struct stack_table {
    struct stack_entry *v; /* v[0] is the empty stack */
    uint32_t n, cap;
    uint32_t *slots; /* open addressing: id + 1, 0 = empty */
    uint32_t nslots;
};

void stack_table_init(struct stack_table *t);
void stack_table_free(struct stack_table *t);
/* The id of this stack, adding it when new; STACK_NONE on OOM. */
uint32_t stack_table_intern(struct stack_table *t, const struct py_frame *frames, int n);
const struct stack_entry *stack_table_get(const struct stack_table *t, uint32_t id);
/* Index of the innermost Python frame (native ones, from --native, are
 * skipped); -1 when there is none. */
int stack_python_top(const struct stack_entry *e);
/* The frames a stack is known by where one place in the code is meant
 * (a loop's culprit, a lock's wait site): its innermost Python frame and,
 * when C code runs above it, the innermost native frame before it. Returns
 * how many (0-2) were written to out[2]. */
int stack_site_frames(const struct stack_entry *e, struct py_frame out[2]);
/* Telling a frame's function: whether a path ends with `suffix`, and a
 * name without its class ("BaseEventLoop._run_once" -> "_run_once"; 3.8-3.10
 * code objects carry no qualified name). */
bool code_file_ends_with(const char *path, const char *suffix);
/* A byte per stack id (a classification cached by id, 0 = not yet
 * decided), grown on demand: the byte for `stack`, NULL when out of memory. */
uint8_t *stack_kind_slot(uint8_t **kind, uint32_t *cap, uint32_t stack);
const char *code_bare_name(const char *name);
/* Text every report and finding shares. A frame: "func (file:line)". A
 * stack as one place in the code: its innermost Python frame, and the C
 * function above it when native frames are on top ("f (a.py:3), in C:
 * epoll_wait ([libc.so.6])"); "(no Python frame)" for an empty stack. */
void stack_frame_text(const struct py_frame *f, char *buf, size_t sz);
void stack_site_text(const struct stack_entry *e, char *buf, size_t sz);

/* A count per stack id (small maps: most threads see few stacks). */
struct stack_counts {
    uint32_t *ids;
    uint64_t *counts;
    uint32_t n, cap;
};

void stack_counts_add(struct stack_counts *c, uint32_t id, uint64_t k);
void stack_counts_free(struct stack_counts *c);
/* Indices into c sorted by count, descending (caller frees). */
uint32_t *stack_counts_ranked(const struct stack_counts *c);

#endif
