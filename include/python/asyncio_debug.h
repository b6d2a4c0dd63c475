/* asyncio tasks of CPython 3.14+, read through the offsets the process
 * publishes itself: the `.AsyncioDebug` section (_Py_AsyncioModuleDebug
 * Offsets) of its _asyncio module or runtime. Tasks live in per-thread
 * circular lists (the thread that created them), and in the interpreter's
 * list once their thread is gone; a task leaves its list when it finishes,
 * so every task listed is pending or running. */
#ifndef GILPROBE_ASYNCIO_DEBUG_H
#define GILPROBE_ASYNCIO_DEBUG_H
#include <stdbool.h>
#include <stdint.h>

#include "python/asyncio_tasks.h"

/* The published offsets, in the section's order (Modules/_asynciomodule.c). */
struct asyncio_debug {
    uint64_t task_size, task_name, task_awaited_by, task_is_task, task_awaited_by_is_set,
        task_coro, task_node;
    uint64_t interp_size, interp_tasks_head;
    uint64_t ts_size, ts_running_loop, ts_running_task, ts_tasks_head;
};

/* Finds and validates the table in the process; false (with *why) when
 * there is none (asyncio not imported, or no such section: < 3.14) or it
 * is implausible. */
bool asyncio_debug_find(struct pyrt *rt, struct asyncio_debug *dbg, const char **why);
/* Every task of the threads' lists and the interpreter's. */
void asyncio_debug_tasks(struct pyrt *rt, struct pyobj_cache *c, const struct asyncio_debug *dbg,
                         const struct asyncio_thread *threads, size_t nthreads, uint64_t interp,
                         struct asyncio_tasks *out);

#endif
