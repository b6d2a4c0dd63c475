/* Walking Python stacks in the target: raw frame chains read in lockstep
 * across threads (one batched read per depth), optionally stopping where a
 * thread's stack is the same as in its previous walk; then resolution of
 * raw frames into functions, files and lines. */
#ifndef GILPROBE_STACKWALK_H
#define GILPROBE_STACKWALK_H
#include <stdbool.h>
#include <stdint.h>

#include "python/frame.h"
#include "python/pyobj.h"
#include "python/pyrt.h"

#define STACK_MAX_FRAMES 4096
#define STACK_FRAME_READ PY_READ_FRAME
#define STACKWALK_PREFETCH_REQS 3

/* A frame as read, before any interpretation. */
struct raw_frame {
    uint64_t addr;
    uint64_t code;     /* code object (tag bits cleared) */
    uint64_t pos;      /* instr pointer (3.11+) or f_lasti (<=3.10) */
    uint64_t previous; /* caller frame */
    int32_t tlbc;      /* 3.14t: the thread-local bytecode copy pos is in */
    uint8_t owner;     /* 3.11+ frame owner kind */
    bool entry;        /* 3.11: _PyInterpreterFrame.is_entry */
};


struct frame_prefetch {
    uint64_t addr;
    bool ok;
    uint8_t buf[STACK_FRAME_READ];
};

struct stack_walk {
    uint64_t root;                /* in: the thread state's frame field */
    const struct raw_frame *prev; /* in: the previous walk, or NULL */
    int nprev;
    uint64_t prev_root;           /* in: the previous walk's root */
    /* Reads issued ahead, batched by the caller with its own: the frame
     * pointer in the previous _PyCFrame (3.11/3.12) and the previous two
     * frames. A stack that changed only at the top then needs no more. */
    uint64_t pre_top;
    bool pre_top_ok;
    struct frame_prefetch pre[2];
    struct raw_frame *frames;     /* out: innermost first; realloc'd */
    int nframes, cap;
    bool partial;                 /* out: stopped on something unreadable */
    bool unchanged;               /* out: identical to prev */
};

/* Appends the prefetch reads for w to out (the previous walk's cframe
 * slot and its top `frames` frames, 0-2: at most STACKWALK_PREFETCH_REQS
 * requests); returns how many. Call stackwalk_prefetch_done after reading. */
size_t stackwalk_prefetch_requests(const struct pyrt *rt, struct stack_walk *w, int frames,
                                   struct remote_req *out);
/* True when the prefetched top frame is exactly the previous walk's top. */
bool stackwalk_top_unchanged(const struct pyrt *rt, const struct stack_walk *w);
void stackwalk_prefetch_done(struct stack_walk *w, const struct remote_req *reqs, size_t n);

/* Where a thread state keeps its stack (frame, _PyCFrame or current_frame). */
int32_t stackwalk_root_offset(const struct py_layout *L);
void stackwalk_run(struct pyrt *rt, struct stack_walk *walks, size_t n);
/* One frame read on its own (a suspended coroutine's: no thread runs
 * it); false when unreadable. */
bool stackwalk_read_frame(struct pyrt *rt, uint64_t addr, struct raw_frame *out);
/* Python frames of a raw chain; skips shim and not-yet-started frames.
 * Returns the count written to out (at most cap); *partial set when a
 * frame's code object could not be read. */
int stackwalk_resolve(struct pyrt *rt, struct pyobj_cache *c, const struct raw_frame *raw, int n,
                      struct py_frame *out, int cap, bool *partial);

#endif
