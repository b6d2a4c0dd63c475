/* asyncio tasks read from outside. CPython 3.8-3.13: the registry that
 * asyncio.all_tasks() reads - a WeakSet of every task (3.8-3.11), or the
 * WeakSet of scheduled tasks and the set of eagerly started ones
 * (3.12-3.13) - found through sys.modules['asyncio.tasks'], C `_asyncio`
 * tasks through their generated layout (python/asyncio_layout.h) and
 * pure-Python ones through their attributes. The running task of each
 * loop comes from asyncio's current-tasks table. 3.14+: the per-thread
 * lists (python/asyncio_debug.h). Bounded and type-checked; an unreadable
 * registry gives no tasks and a reason. */
#ifndef GILPROBE_ASYNCIO_TASKS_H
#define GILPROBE_ASYNCIO_TASKS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "python/frame.h"
#include "python/pyobj.h"
#include "python/pyrt.h"

#define ASYNCIO_TASKS_MAX 16384 /* tasks one read lists */
#define ASYNCIO_TASK_NAME_MAX 96

#define ASYNCIO_TASK_FRAMES 16 /* of a task's coroutine chain, kept */
#define ASYNCIO_AWAITERS_MAX 8 /* tasks that await one task, kept */

enum asyncio_task_state { TASK_PENDING, TASK_RUNNING, TASK_CANCELLED, TASK_FINISHED };

/* What a pending task waits for, from what it awaits and where. */
enum asyncio_await_kind {
    AWAIT_NONE, AWAIT_FUTURE, AWAIT_TASK, AWAIT_GATHER, AWAIT_TASKGROUP, AWAIT_SLEEP,
    AWAIT_LOCK, AWAIT_EVENT, AWAIT_CONDITION, AWAIT_SEMAPHORE, AWAIT_QUEUE, AWAIT_WAIT_FOR,
    AWAIT_TIMEOUT, AWAIT_STREAM, AWAIT_SOCKET
};

struct asyncio_task {
    uint64_t addr;   /* the Task object: its id() */
    int32_t tid;     /* the thread whose list holds it (3.14+); 0: unknown */
    uint64_t loop;   /* its event loop object */
    uint64_t waiter; /* the future it awaits (0: none) */
    enum asyncio_task_state state;
    bool native;     /* a C _asyncio.Task, else a pure-Python one */
    char name[ASYNCIO_TASK_NAME_MAX];
    uint64_t coro;   /* its coroutine */
    /* Where its awaiters are found: its done callbacks (3.8-3.13: a
     * TaskGroup's), or (3.14+) its awaited-by field, a task or a set. */
    uint64_t callback0, callbacks, awaited_by_obj;
    bool awaited_by_is_set;
    /* Its coroutine chain, innermost first (empty when finished). */
    struct py_frame frames[ASYNCIO_TASK_FRAMES];
    uint8_t nframes;
    bool frames_truncated;
    /* The tasks that await it (a task awaiting it, or it among the
     * children of their gather or TaskGroup). */
    uint64_t awaited_by[ASYNCIO_AWAITERS_MAX];
    uint8_t nawaited_by;
    enum asyncio_await_kind await_kind;
    /* its running timeout (wait_for, asyncio.timeout), when one is pending:
     * when it fires, CLOCK_MONOTONIC seconds (python/asyncio_deadlines.h) */
    bool has_deadline;
    double deadline;
};

struct asyncio_tasks {
    struct asyncio_task *v;
    uint32_t n;
    bool truncated;       /* more than ASYNCIO_TASKS_MAX */
    const char *why_none; /* no registry read: why (NULL when it was) */
    const char *why_no_frames; /* coroutine chains not read: why (NULL when they were) */
    double read_at;            /* CLOCK_MONOTONIC seconds of the read */
};

/* A Python thread, for the per-thread task lists of 3.14+. */
struct asyncio_thread {
    uint64_t tstate;
    int32_t tid;
};

void asyncio_tasks_read(struct pyrt *rt, struct pyobj_cache *c, const struct asyncio_thread *threads,
                        size_t nthreads, struct asyncio_tasks *out);
void asyncio_tasks_free(struct asyncio_tasks *t);
const char *asyncio_task_state_name(enum asyncio_task_state s);
const char *asyncio_await_kind_name(enum asyncio_await_kind k);
/* A task's name: a str, or (3.12+, until asked for) the int N of "Task-N". */
void asyncio_task_name(struct pyrt *rt, struct pyobj_cache *c, uint64_t obj, char *out, size_t sz);

#endif
