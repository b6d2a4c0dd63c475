/* Coroutine chains and await edges of asyncio tasks: see
 * python/asyncio_links.h. */
#include "python/asyncio_links.h"

#include <stdlib.h>
#include <string.h>

#include "python/coro_chain.h"
#include "python/pydict.h"
#include "util/addrmap.h"

#define CHILDREN_MAX 4096 /* of one gather, read */
#define CALLBACKS_MAX 256 /* of one task, read */
#define ATTRS_MAX 256

#define NO_CHAINS "this version's coroutine layout is not known (read through _Py_DebugOffsets alone)"

const char *asyncio_await_kind_name(enum asyncio_await_kind k)
{
    static const char *const names[] = {
        [AWAIT_NONE] = "none",         [AWAIT_FUTURE] = "future",   [AWAIT_TASK] = "task",
        [AWAIT_GATHER] = "gather",     [AWAIT_TASKGROUP] = "taskgroup", [AWAIT_SLEEP] = "sleep",
        [AWAIT_LOCK] = "lock",         [AWAIT_EVENT] = "event",     [AWAIT_CONDITION] = "condition",
        [AWAIT_SEMAPHORE] = "semaphore", [AWAIT_QUEUE] = "queue",   [AWAIT_WAIT_FOR] = "wait_for",
        [AWAIT_TIMEOUT] = "timeout",   [AWAIT_STREAM] = "stream",   [AWAIT_SOCKET] = "socket",
    };
    return (unsigned)k < sizeof names / sizeof names[0] && names[k] ? names[k] : "future";
}

/* asyncio's own coroutines that tell what a task waits for, by the file
 * (under asyncio/) and the function's name: qualified on 3.11+, bare
 * before (there a Condition.wait reads as an Event.wait). */
static const struct {
    const char *file, *name;
    enum asyncio_await_kind kind;
} known[] = {
    {"tasks.py", "sleep", AWAIT_SLEEP},
    {"tasks.py", "wait_for", AWAIT_WAIT_FOR},
    {"timeouts.py", "Timeout.__aexit__", AWAIT_TIMEOUT},
    {"taskgroups.py", "TaskGroup.__aexit__", AWAIT_TASKGROUP},
    {"taskgroups.py", "TaskGroup._aexit", AWAIT_TASKGROUP},
    {"locks.py", "Lock.acquire", AWAIT_LOCK},
    {"locks.py", "Event.wait", AWAIT_EVENT},
    {"locks.py", "Condition.wait", AWAIT_CONDITION},
    {"locks.py", "Condition.wait_for", AWAIT_CONDITION},
    {"locks.py", "Semaphore.acquire", AWAIT_SEMAPHORE},
    {"locks.py", "Barrier.wait", AWAIT_EVENT},
    {"locks.py", "acquire", AWAIT_LOCK},
    {"locks.py", "wait", AWAIT_EVENT},
    {"queues.py", "Queue.get", AWAIT_QUEUE},
    {"queues.py", "Queue.put", AWAIT_QUEUE},
    {"queues.py", "Queue.join", AWAIT_QUEUE},
    {"queues.py", "get", AWAIT_QUEUE},
    {"queues.py", "put", AWAIT_QUEUE},
    {"queues.py", "join", AWAIT_QUEUE},
    {"streams.py", NULL, AWAIT_STREAM},
    {"selector_events.py", NULL, AWAIT_SOCKET},
    {"base_events.py", "BaseEventLoop.sock_connect", AWAIT_SOCKET},
    {"base_events.py", "BaseEventLoop.create_connection", AWAIT_SOCKET},
};

static bool in_asyncio(const char *filename, const char *file)
{
    size_t n = strlen(filename), k = strlen(file);
    return n > k + 8 && strcmp(filename + n - k, file) == 0 &&
           memcmp(filename + n - k - 8, "asyncio/", 8) == 0;
}

/* The known wait of frame f, AWAIT_NONE if none. */
static enum asyncio_await_kind frame_kind(const struct py_frame *f)
{
    const struct code_info *ci = f->code;
    if (!ci || !ci->filename || !ci->name)
        return AWAIT_NONE;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (in_asyncio(ci->filename, known[k].file) &&
            (!known[k].name || strcmp(ci->name, known[k].name) == 0))
            return known[k].kind;
    return AWAIT_NONE;
}

/* A deadline anywhere in the chain (wait_for, asyncio.timeout) bounds the
 * wait: that first; else the innermost of asyncio's coroutines names it;
 * else a task or gather awaited directly. */
static enum asyncio_await_kind kind_of(struct pyrt *rt, struct pyobj_cache *c,
                                       const struct asyncio_task *t,
                                       uint32_t waiter_task)
{
    enum asyncio_await_kind inner = AWAIT_NONE;
    for (int i = 0; i < t->nframes; i++) {
        enum asyncio_await_kind k = frame_kind(&t->frames[i]);
        if (k == AWAIT_WAIT_FOR || k == AWAIT_TIMEOUT)
            return k;
        if (inner == AWAIT_NONE)
            inner = k;
    }
    if (inner != AWAIT_NONE)
        return inner;
    if (waiter_task)
        return AWAIT_TASK;
    if (t->waiter && pyobj_type_named(rt, c, t->waiter, "_GatheringFuture"))
        return AWAIT_GATHER;
    return t->waiter || t->nframes ? AWAIT_FUTURE : AWAIT_NONE;
}

/* The task's coroutine chain, innermost first. */
static void read_chain(struct pyrt *rt, struct pyobj_cache *c, struct asyncio_task *t,
                       struct coro_chain *chain)
{
    coro_chain_read(rt, c, t->coro, chain);
    struct py_frame out[CORO_CHAIN_MAX];
    bool partial = false;
    int n = stackwalk_resolve(rt, c, chain->frames, chain->n, out, CORO_CHAIN_MAX, &partial);
    int keep = n < ASYNCIO_TASK_FRAMES ? n : ASYNCIO_TASK_FRAMES;
    /* the chain runs outermost first; keep the innermost ones */
    for (int i = 0; i < keep; i++)
        t->frames[i] = out[n - 1 - i];
    t->nframes = (uint8_t)keep;
    t->frames_truncated = chain->truncated || partial || n > keep;
    /* 3.14+ publish no fut_waiter: the innermost coroutine awaits the
     * future's iterator, whose one field (after the object header) is the
     * future */
    uint64_t fut;
    if (!t->waiter && chain->leaf && pyobj_type_named(rt, c, chain->leaf, "_asyncio.FutureIter") &&
        remote_u64(&rt->mem, chain->leaf + (uint64_t)rt->layout.obj_type + 8, &fut))
        t->waiter = fut;
}

static void add_edge(struct asyncio_task *awaited, uint64_t awaiter)
{
    for (int i = 0; i < awaited->nawaited_by; i++)
        if (awaited->awaited_by[i] == awaiter)
            return;
    if (awaiter != awaited->addr && awaited->nawaited_by < ASYNCIO_AWAITERS_MAX)
        awaited->awaited_by[awaited->nawaited_by++] = awaiter;
}

static struct asyncio_task *task_at(const struct addrmap *index, struct asyncio_tasks *t,
                                    uint64_t addr)
{
    uintptr_t k = addr ? (uintptr_t)addrmap_get(index, addr) : 0;
    return k ? &t->v[k - 1] : NULL;
}

/* 3.14+: the task's own awaited-by field, a task or a set of tasks. */
static void edges_recorded(struct pyrt *rt, const struct addrmap *index, struct asyncio_tasks *t,
                           struct asyncio_task *k, uint64_t *items)
{
    int n = 1;
    if (k->awaited_by_is_set)
        n = pyset_items(rt, k->awaited_by_obj, items, CHILDREN_MAX);
    else
        items[0] = k->awaited_by_obj;
    for (int i = 0; i < n; i++)
        if (task_at(index, t, items[i]))
            add_edge(k, items[i]);
}

/* Before 3.14: k awaits a task, or a gather of tasks. */
static void edges_from_waiter(struct pyrt *rt, struct pyobj_cache *c, const struct addrmap *index,
                              struct asyncio_tasks *t, struct asyncio_task *k, uint64_t *items)
{
    struct asyncio_task *awaited = task_at(index, t, k->waiter);
    if (awaited) {
        add_edge(awaited, k->addr);
        return;
    }
    if (!k->waiter || !pyobj_type_named(rt, c, k->waiter, "_GatheringFuture"))
        return;
    struct pydict_entry attrs[ATTRS_MAX];
    int na = pyobj_instance_attrs(rt, k->waiter, attrs, ATTRS_MAX);
    uint64_t children = na > 0 ? pydict_find_str(rt, c, attrs, na, "_children") : 0;
    int n = pylist_items(rt, children, items, CHILDREN_MAX);
    for (int i = 0; i < n; i++)
        if ((awaited = task_at(index, t, items[i])))
            add_edge(awaited, k->addr);
}

/* Before 3.14: a TaskGroup's child has the group's _on_task_done as a
 * done callback; the group's _parent_task awaits it. */
static void edges_from_callbacks(struct pyrt *rt, struct pyobj_cache *c,
                                 const struct addrmap *index, struct asyncio_tasks *t,
                                 struct asyncio_task *k, uint64_t *items)
{
    uint64_t cbs[CALLBACKS_MAX + 1];
    int n = 0;
    if (k->callback0)
        cbs[n++] = k->callback0;
    int m = k->callbacks ? pylist_items(rt, k->callbacks, items, CALLBACKS_MAX) : 0;
    for (int i = 0; i < m; i++) {
        uint64_t pair[2]; /* (callback, context) */
        if (pytuple_items(rt, items[i], pair, 2) == 2)
            cbs[n++] = pair[0];
    }
    for (int i = 0; i < n; i++) {
        uint64_t group;
        if (!pyobj_type_named(rt, c, cbs[i], "method") ||
            !remote_u64(&rt->mem, cbs[i] + (uint64_t)rt->layout.method_self, &group) ||
            !pyobj_type_named(rt, c, group, "TaskGroup"))
            continue;
        struct pydict_entry attrs[ATTRS_MAX];
        int na = pyobj_instance_attrs(rt, group, attrs, ATTRS_MAX);
        uint64_t parent = na > 0 ? pydict_find_str(rt, c, attrs, na, "_parent_task") : 0;
        if (task_at(index, t, parent))
            add_edge(k, parent);
    }
}

void asyncio_links_read(struct pyrt *rt, struct pyobj_cache *c, struct asyncio_tasks *t)
{
    struct addrmap index;
    addrmap_init(&index);
    uint64_t *items = malloc(CHILDREN_MAX * sizeof *items);
    struct coro_chain *chain = malloc(sizeof *chain);
    bool chains = coro_chain_supported(rt);
    t->why_no_frames = chains ? NULL : NO_CHAINS;
    for (uint32_t i = 0; i < t->n; i++)
        if (!addrmap_put(&index, t->v[i].addr, (void *)(uintptr_t)(i + 1)))
            break;
    for (uint32_t i = 0; items && chain && i < t->n; i++) {
        struct asyncio_task *k = &t->v[i];
        bool live = k->state == TASK_PENDING || k->state == TASK_RUNNING;
        if (chains && live && k->coro)
            read_chain(rt, c, k, chain);
        /* 3.14+ native tasks record their awaiters themselves */
        if (rt->version_hex >= 0x030E0000 && k->native) {
            if (k->awaited_by_obj)
                edges_recorded(rt, &index, t, k, items);
            continue;
        }
        if (live)
            edges_from_waiter(rt, c, &index, t, k, items);
        if (live && (k->callback0 || k->callbacks))
            edges_from_callbacks(rt, c, &index, t, k, items);
    }
    for (uint32_t i = 0; i < t->n; i++) {
        struct asyncio_task *k = &t->v[i];
        if (k->state == TASK_PENDING)
            k->await_kind = kind_of(rt, c, k, task_at(&index, t, k->waiter) != NULL);
    }
    free(chain);
    free(items);
    addrmap_free(&index);
}
