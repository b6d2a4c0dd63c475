/* What joins asyncio tasks: each unfinished task's coroutine chain (the
 * frames of its suspended coroutines), what it waits for, and which tasks
 * await it - directly, through a gather, or as a TaskGroup's child. 3.14+
 * record the last two themselves (a task's awaited-by field); before,
 * they are found from the awaiting task's future and the awaited task's
 * done callbacks. */
#ifndef GILPROBE_ASYNCIO_LINKS_H
#define GILPROBE_ASYNCIO_LINKS_H

#include "python/asyncio_tasks.h"

void asyncio_links_read(struct pyrt *rt, struct pyobj_cache *c, struct asyncio_tasks *t);

#endif
