/* One read of the interpreter's state: GIL word, thread states, stacks. */
#ifndef GILPROBE_SNAPSHOT_H
#define GILPROBE_SNAPSHOT_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "python/gil.h"
#include "python/pyobj.h"
#include "python/pyrt.h"
#include "python/stackwalk.h"

#define SNAP_MAX_INTERPRETERS 256
#define SNAP_MAX_THREADS 20000

struct py_thread {
    uint64_t tstate;
    uint64_t interp;
    uint64_t pthread;   /* pthread_t (thread_id) */
    pid_t tid;          /* kernel TID as seen from here; 0 if unknown */
    bool holds_gil;
    bool stack_partial; /* the walk stopped on something unreadable */
    struct py_frame *frames; /* innermost first */
    int nframes;
};

struct snapshot {
    struct gil_state gil;
    struct py_thread *threads;
    size_t nthreads;
    bool partial;          /* the thread list changed under us */
    char partial_reason[128];
};

/* Reads GIL and threads (and stacks when `stacks`). Never fails as a whole
 * while the process exists: unreadable parts are marked partial. Returns
 * GP_OK, or GP_ERR_EXITED when the process is gone. */
int snapshot_take(struct pyrt *rt, struct pyobj_cache *cache, bool stacks, struct snapshot *s,
                  struct gp_error *err);
void snapshot_free(struct snapshot *s);
/* One thread's Python stack, read afresh (--native reads it while that
 * thread is stopped, so it matches the native stack). Returns the frame
 * count (*frames malloc'd, innermost first), or -1 on OOM. */
int snapshot_thread_frames(struct pyrt *rt, struct pyobj_cache *c, uint64_t tstate,
                           struct py_frame **frames, bool *partial);

#endif
