/* The deadline of each pending task's running timeout (wait_for,
 * asyncio.timeout), read from its loop's timer heap for a dump. */
#ifndef GILPROBE_ASYNCIO_DEADLINES_H
#define GILPROBE_ASYNCIO_DEADLINES_H

#include "python/asyncio_tasks.h"

/* Sets has_deadline and deadline (CLOCK_MONOTONIC seconds, as the loops'
 * clock) of the tasks of out that have a timeout pending. */
void asyncio_deadlines_read(struct pyrt *rt, struct pyobj_cache *c, struct asyncio_tasks *out);

#endif
