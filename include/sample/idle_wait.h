/* Idle waits: a thread blocked in a futex that waits for work or for a
 * notification (Condition/Event/Barrier/Semaphore waits, queue gets, a
 * pool worker with nothing to do, Thread.join) rather than to enter a
 * critical section another thread holds (lock contention). From outside
 * both are one futex wait; what tells them apart is what the thread is in:
 * its innermost Python frame, the C functions above it (--native), and,
 * for the C SimpleQueue.get, return addresses into the _queue module found
 * on its native stack. */
#ifndef GILPROBE_IDLE_WAIT_H
#define GILPROBE_IDLE_WAIT_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "record/stacks.h"
#include "target/remote.h"

/* Whether this stack waits for work or a notification, by its frames. */
bool idle_wait_stack(const struct stack_entry *e);

/* The same, cached per stack id. */
struct idle_classifier {
    uint8_t *kind; /* per stack id: 0 unknown, 1 no, 2 idle */
    uint32_t cap;
};
bool idle_classify(struct idle_classifier *ic, const struct stack_table *stacks, uint32_t stack);
void idle_classifier_free(struct idle_classifier *ic);

/* The executable mapping of the target's _queue extension module (where
 * the C SimpleQueue lives), found again at most once a second while it is
 * not loaded. */
struct queue_module {
    pid_t pid;
    uint64_t lo, hi; /* 0, 0: not found (yet) */
    double checked_at;
};
void queue_module_refresh(struct queue_module *q, pid_t pid, double now_s);
/* Whether the native stack above `sp` (the thread is blocked in a futex)
 * holds a return address into the _queue module: the wait is inside
 * SimpleQueue.get. Reads at most IDLE_STACK_SCAN_BYTES once. */
#define IDLE_STACK_SCAN_BYTES 2048
bool idle_wait_in_queue_get(const struct queue_module *q, struct remote *mem, uint64_t sp);

#endif
