/* The asyncio task a thread's event loop runs right now, and its name,
 * for the sampler: which task a loop stall was spent in. 3.14+: the
 * thread state's running task (.AsyncioDebug); 3.8-3.13, and 3.14+'s
 * pure-Python tasks: asyncio's {loop: task} table (_current_tasks), the
 * entry of the thread's own loop (or the only entry while that loop is
 * not known). Each read is a
 * few small reads of the target; a task's name is read once per task
 * (kept while the same task object runs the same coroutine). */
#ifndef GILPROBE_ASYNCIO_RUNNING_H
#define GILPROBE_ASYNCIO_RUNNING_H
#include <stdbool.h>
#include <stdint.h>

#include "python/pyobj.h"
#include "python/pyrt.h"

struct asyncio_running;

/* NULL on out-of-memory; a handle that has found nothing yet otherwise
 * (asyncio may be imported later: see asyncio_running_look). */
struct asyncio_running *asyncio_running_open(struct pyrt *rt, struct pyobj_cache *c);
/* Looks for the running-task table again when not found yet, at most
 * every few seconds (now: CLOCK_MONOTONIC seconds). */
void asyncio_running_look(struct asyncio_running *r, double now);
/* The event loop the thread whose state is at tstate runs: 3.14+ its
 * thread state's; before, a loop of the {loop: task} table whose
 * _thread_id is that thread's (so only while one of its tasks runs:
 * callers keep it). False when not found. */
bool asyncio_running_loop(struct asyncio_running *r, uint64_t tstate, uint64_t *loop);
/* The task running on the thread whose state is at tstate (whose loop is
 * `loop` when known, else 0), and its name (owned by r, valid until
 * asyncio_running_close); false when none runs or it cannot be told. */
bool asyncio_running_task(struct asyncio_running *r, uint64_t tstate, uint64_t loop,
                          uint64_t *task, const char **name);
void asyncio_running_close(struct asyncio_running *r);

#endif
