/* How many asyncio tasks are alive, cheaply enough to ask every second:
 * 3.14+ the length of a thread's task list (a task leaves it when it
 * finishes: the thread's pending tasks; one read per task); 3.8-3.13 the
 * size of asyncio's task registry, the WeakSet of every task (3.8-3.11)
 * or of scheduled tasks plus the set of eager ones (3.12-3.13): one read
 * per set, for the whole process, finished tasks that something still
 * references included. */
#ifndef GILPROBE_ASYNCIO_COUNT_H
#define GILPROBE_ASYNCIO_COUNT_H
#include <stdbool.h>
#include <stdint.h>

#include "python/pyobj.h"
#include "python/pyrt.h"

#define ASYNCIO_COUNT_MAX 200000 /* a 3.14+ list longer than this is counted to here */

struct asyncio_count;

struct asyncio_count *asyncio_count_open(struct pyrt *rt, struct pyobj_cache *c);
/* Whether counts are per thread (3.14+) or for the whole process. */
bool asyncio_count_per_thread(const struct asyncio_count *ac);
/* The tasks of the thread whose state is at tstate (3.14+), or of the
 * process; false when asyncio's registry is not found (yet: looked for
 * again at most every few seconds; now: CLOCK_MONOTONIC seconds). */
bool asyncio_count_tasks(struct asyncio_count *ac, uint64_t tstate, double now, uint64_t *n);
void asyncio_count_close(struct asyncio_count *ac);

#endif
