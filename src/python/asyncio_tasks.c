/* asyncio tasks of a 3.8-3.13 process, read from outside: see
 * python/asyncio_tasks.h. */
#include "python/asyncio_tasks.h"

#include "python/asyncio_deadlines.h"
#include "python/asyncio_debug.h"
#include "python/asyncio_layout.h"
#include "python/asyncio_links.h"
#include "python/pydict.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTRS_MAX 256
#define CURRENT_MAX 4096 /* running loops */

#define NO_ASYNCIO "asyncio is not imported"
#define NO_REGISTRY "asyncio's task registry could not be read"
#define NOT_YET "free-threaded builds before 3.14 lay their tasks out differently: not read yet"

/* Enum fut_state of _asynciomodule.c, the same in every version. */
enum { STATE_PENDING, STATE_CANCELLED, STATE_FINISHED };

const struct asyncio_layout *asyncio_layout_for(int minor)
{
    for (size_t i = 0; i < asyncio_generated_layout_count; i++)
        if (asyncio_generated_layouts[i].minor == minor)
            return &asyncio_generated_layouts[i];
    return NULL;
}

const char *asyncio_task_state_name(enum asyncio_task_state s)
{
    switch (s) {
    case TASK_RUNNING: return "running";
    case TASK_CANCELLED: return "cancelled";
    case TASK_FINISHED: return "done";
    default: return "pending";
    }
}

void asyncio_tasks_free(struct asyncio_tasks *t)
{
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* The object a weak reference points to; 0 when dead or not a weakref. */
static uint64_t weakref_target(struct pyrt *rt, struct pyobj_cache *c, uint64_t ref)
{
    uint64_t obj;
    if (!pyobj_type_named(rt, c, ref, "weakref.ReferenceType") &&
        !pyobj_type_named(rt, c, ref, "weakref"))
        return 0;
    if (!remote_u64(&rt->mem, ref + (uint64_t)rt->layout.weakref_object, &obj) || !obj ||
        pyobj_type_named(rt, c, obj, "NoneType"))
        return 0;
    return obj;
}

void asyncio_task_name(struct pyrt *rt, struct pyobj_cache *c, uint64_t obj, char *out, size_t sz)
{
    uint64_t n;
    char *s = pyobj_str_copy(rt, c, obj);
    if (s)
        snprintf(out, sz, "%s", s);
    else if (pyint_u64(rt, obj, &n))
        snprintf(out, sz, "Task-%llu", (unsigned long long)n);
    free(s);
}

static bool read_native(struct pyrt *rt, struct pyobj_cache *c, const struct asyncio_layout *A,
                        uint64_t obj, struct asyncio_task *t)
{
    uint8_t raw[512];
    if ((size_t)A->task_size > sizeof raw || remote_read(&rt->mem, obj, raw, (size_t)A->task_size) != 0)
        return false;
    uint32_t state;
    uint64_t name;
    memcpy(&t->loop, raw + A->task_loop, 8);
    memcpy(&t->waiter, raw + A->task_fut_waiter, 8);
    memcpy(&state, raw + A->task_state, 4);
    memcpy(&name, raw + A->task_name, 8);
    memcpy(&t->coro, raw + A->task_coro, 8);
    memcpy(&t->callback0, raw + A->task_callback0, 8);
    memcpy(&t->callbacks, raw + A->task_callbacks, 8);
    if (state > STATE_FINISHED || !t->loop)
        return false;
    t->state = state == STATE_PENDING ? TASK_PENDING : state == STATE_CANCELLED ? TASK_CANCELLED
                                                                                 : TASK_FINISHED;
    t->native = true;
    asyncio_task_name(rt, c, name, t->name, sizeof t->name);
    return true;
}

/* A pure-Python Task (asyncio.tasks._PyTask, or any Task-like object in
 * the registry): its _loop, _coro, _state, _name and _fut_waiter
 * attributes. _state is the class's "PENDING" until it changes. */
static bool read_python(struct pyrt *rt, struct pyobj_cache *c, uint64_t obj, struct asyncio_task *t)
{
    struct pydict_entry attrs[ATTRS_MAX];
    int na = pyobj_instance_attrs(rt, obj, attrs, ATTRS_MAX);
    if (na <= 0 || !(t->coro = pydict_find_str(rt, c, attrs, na, "_coro")))
        return false;
    uint64_t state = pydict_find_str(rt, c, attrs, na, "_state");
    const char *s = state ? pyobj_str(rt, c, state) : "PENDING";
    if (!s)
        return false;
    t->state = strcmp(s, "PENDING") == 0     ? TASK_PENDING
               : strcmp(s, "CANCELLED") == 0 ? TASK_CANCELLED
                                             : TASK_FINISHED;
    t->loop = pydict_find_str(rt, c, attrs, na, "_loop");
    uint64_t waiter = pydict_find_str(rt, c, attrs, na, "_fut_waiter");
    t->waiter = waiter && !pyobj_type_named(rt, c, waiter, "NoneType") ? waiter : 0;
    uint64_t name = pydict_find_str(rt, c, attrs, na, "_name");
    if (name)
        asyncio_task_name(rt, c, name, t->name, sizeof t->name);
    return t->loop != 0;
}

/* dedup: obj may already be listed (a task in both sets for a moment,
 * 3.12+); the items of one set are distinct. */
static void add_task(struct pyrt *rt, struct pyobj_cache *c, const struct asyncio_layout *A,
                     uint64_t obj, bool dedup, struct asyncio_tasks *out)
{
    for (uint32_t i = 0; dedup && i < out->n; i++)
        if (out->v[i].addr == obj)
            return;
    if (out->n == ASYNCIO_TASKS_MAX) {
        out->truncated = true;
        return;
    }
    struct asyncio_task *t = &out->v[out->n];
    memset(t, 0, sizeof *t);
    t->addr = obj;
    bool ok = pyobj_type_named(rt, c, obj, "_asyncio.Task") ? read_native(rt, c, A, obj, t)
                                                       : read_python(rt, c, obj, t);
    if (ok)
        out->n++;
}

/* Every task of a registry set; weak: its items are weak references.
 * The first set read needs no duplicate check. */
static bool add_set(struct pyrt *rt, struct pyobj_cache *c, const struct asyncio_layout *A,
                    uint64_t set, bool weak, uint64_t *items, struct asyncio_tasks *out)
{
    bool dedup = out->n > 0;
    int n = pyset_items(rt, set, items, ASYNCIO_TASKS_MAX);
    for (int i = 0; i < n; i++) {
        uint64_t obj = weak ? weakref_target(rt, c, items[i]) : items[i];
        if (obj)
            add_task(rt, c, A, obj, dedup, out);
    }
    return n >= 0;
}

/* The set inside a WeakSet (its `data` attribute). */
static uint64_t weakset_data(struct pyrt *rt, struct pyobj_cache *c, uint64_t weakset)
{
    return pyobj_attr(rt, c, weakset, "data");
}

/* The running task of every loop: asyncio's {loop: task} table. */
static void mark_running(struct pyrt *rt, uint64_t table, struct asyncio_tasks *out)
{
    struct pydict_entry *cur = malloc(CURRENT_MAX * sizeof *cur);
    int n = cur && table ? pydict_entries(rt, table, cur, CURRENT_MAX) : -1;
    for (int i = 0; i < n; i++)
        for (uint32_t k = 0; k < out->n; k++)
            if (out->v[k].addr == cur[i].value && out->v[k].state == TASK_PENDING)
                out->v[k].state = TASK_RUNNING;
    free(cur);
}

/* 3.14+: the per-thread lists the process's own table describes. */
static void read_lists(struct pyrt *rt, struct pyobj_cache *c, const struct asyncio_thread *threads,
                       size_t nthreads, struct asyncio_tasks *out)
{
    struct asyncio_debug dbg;
    if (!asyncio_debug_find(rt, &dbg, &out->why_none))
        return;
    if (!out->v && !(out->v = calloc(ASYNCIO_TASKS_MAX, sizeof *out->v))) {
        out->why_none = NO_REGISTRY;
        return;
    }
    out->why_none = NULL;
    asyncio_debug_tasks(rt, c, &dbg, threads, nthreads, pyrt_main_interp(rt), out);
    asyncio_links_read(rt, c, out);
    asyncio_deadlines_read(rt, c, out);
}

void asyncio_tasks_read(struct pyrt *rt, struct pyobj_cache *c, const struct asyncio_thread *threads,
                        size_t nthreads, struct asyncio_tasks *out)
{
    out->n = 0;
    out->truncated = false;
    out->read_at = clock_mono_s();
    if (rt->version_hex >= 0x030E0000) {
        read_lists(rt, c, threads, nthreads, out);
        return;
    }
    int minor = (int)((rt->version_hex >> 16) & 0xff);
    const struct asyncio_layout *A = asyncio_layout_for(minor);
    if (!A || rt->free_threaded || (rt->version_hex >> 24) != 3 || rt->layout.set_table < 0) {
        out->why_none = NOT_YET;
        return;
    }
    bool imported;
    uint64_t mdict = pymodule_find(rt, c, "asyncio.tasks", &imported);
    if (!mdict) {
        out->why_none = imported ? NO_REGISTRY : NO_ASYNCIO;
        return;
    }
    /* The module's attributes, read once for the three looked up. */
    struct pydict_entry *attrs = malloc(PYDICT_MAX_ENTRIES * sizeof *attrs);
    uint64_t *items = malloc(ASYNCIO_TASKS_MAX * sizeof *items);
    if (!out->v)
        out->v = calloc(ASYNCIO_TASKS_MAX, sizeof *out->v);
    int na = attrs ? pydict_entries(rt, mdict, attrs, PYDICT_MAX_ENTRIES) : -1;
    /* 3.12+: scheduled tasks, and tasks in their first (eager) step. */
    const char *weak_name = minor >= 12 ? "_scheduled_tasks" : "_all_tasks";
    bool ok = items && out->v && na > 0 &&
              add_set(rt, c, A, weakset_data(rt, c, pydict_find_str(rt, c, attrs, na, weak_name)),
                      true, items, out);
    if (ok && minor >= 12)
        add_set(rt, c, A, pydict_find_str(rt, c, attrs, na, "_eager_tasks"), false, items, out);
    if (ok)
        mark_running(rt, pydict_find_str(rt, c, attrs, na, "_current_tasks"), out);
    free(items);
    free(attrs);
    out->why_none = ok ? NULL : NO_REGISTRY;
    if (ok) {
        asyncio_links_read(rt, c, out);
        asyncio_deadlines_read(rt, c, out);
    }
}
