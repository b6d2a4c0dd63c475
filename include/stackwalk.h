/* Walking Python stacks in the target: raw frame chains read in lockstep
 * across threads (one batched read per depth), optionally stopping where a
 * thread's stack is the same as in its previous walk; then resolution of
 * raw frames into functions, files and lines. */
#ifndef GILPROBE_STACKWALK_H
#define GILPROBE_STACKWALK_H
#include <stdbool.h>
#include <stdint.h>

#include "pyobj.h"
#include "pyrt.h"

#define STACK_MAX_FRAMES 4096

/* A frame as read, before any interpretation. */
struct raw_frame {
    uint64_t addr;
    uint64_t code;     /* code object (tag bits cleared) */
    uint64_t pos;      /* instr pointer (3.11+) or f_lasti (<=3.10) */
    uint64_t previous; /* caller frame */
    uint8_t owner;     /* 3.11+ frame owner kind */
};

struct py_frame {
    struct code_info *code; /* owned by the pyobj cache */
    int line;               /* -1 when the instruction has none */
};

struct stack_walk {
    uint64_t root;                /* in: the thread state's frame field */
    const struct raw_frame *prev; /* in: the previous walk, or NULL */
    int nprev;
    struct raw_frame *frames;     /* out: innermost first; realloc'd */
    int nframes, cap;
    bool partial;                 /* out: stopped on something unreadable */
    bool unchanged;               /* out: identical to prev */
};

/* Where a thread state keeps its stack (frame, _PyCFrame or current_frame). */
int32_t stackwalk_root_offset(const struct py_layout *L);
void stackwalk_run(struct pyrt *rt, struct stack_walk *walks, size_t n);
/* Python frames of a raw chain; skips shim and not-yet-started frames.
 * Returns the count written to out (at most cap); *partial set when a
 * frame's code object could not be read. */
int stackwalk_resolve(struct pyrt *rt, struct pyobj_cache *c, const struct raw_frame *raw, int n,
                      struct py_frame *out, int cap, bool *partial);

#endif
