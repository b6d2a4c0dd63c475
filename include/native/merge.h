/* Mixed stacks: native frames with each _PyEval_EvalFrameDefault frame
 * replaced by the Python frames that call ran, the way a debugger shows
 * them; and what the native stack says the thread is doing. */
#ifndef GILPROBE_NATIVE_MERGE_H
#define GILPROBE_NATIVE_MERGE_H
#include <stdbool.h>

#include "native/unwind.h"
#include "python/classify.h"
#include "python/stackwalk.h"

struct mixed_frame {
    const struct native_sym *sym; /* NULL: a Python frame */
    uint64_t ip;                  /* native: as unwound */
    struct py_frame py;           /* Python: the frame */
};

struct mixed_stack {
    struct mixed_frame *f; /* innermost first */
    int n;
    /* Python frames that could not be matched to their own eval frame
     * (none on the stack, or fewer than the Python stack needs) and were
     * put at the outermost one (or on top, when there was none). */
    bool approximate;
};

/* Merges; false on OOM. py are the thread's Python frames (innermost
 * first, entry flags set by stackwalk_resolve). */
bool native_merge(struct native_session *s, const struct native_stack *ns,
                  const struct py_frame *py, int npy, struct mixed_stack *out);
void mixed_stack_free(struct mixed_stack *m);
/* Mixed frames as py_frames (native ones as pseudo code objects) for the
 * sampler's stack tables; returns how many were written (at most cap). */
int mixed_as_py_frames(const struct mixed_stack *m, struct py_frame *out, int cap);

enum native_state {
    NSTATE_UNKNOWN = 0, /* nothing on the stack says */
    NSTATE_GIL_WAIT,    /* take_gil */
    NSTATE_GIL_DROP,    /* drop_gil */
    NSTATE_LOCK_WAIT,   /* a lock acquire */
    NSTATE_GC,          /* the garbage collector */
};

enum native_state native_state_of(struct native_session *s, const struct native_stack *ns);
const char *native_state_name(enum native_state st); /* "gil_wait" ..., NULL when unknown */
/* false when the syscall-based and the stack-based classification name
 * different things (both must say something for them to disagree). */
bool native_state_agrees(enum native_state st, enum block_kind kind);

#endif
