/* The task an event loop runs now: see python/asyncio_running.h. */
#include "python/asyncio_running.h"

#include <stdlib.h>
#include <string.h>

#include "python/asyncio_debug.h"
#include "python/asyncio_layout.h"
#include "python/asyncio_tasks.h"
#include "python/pydict.h"
#include "util/addrmap.h"

#define LOOK_EVERY_S 5.0
#define CURRENT_MAX 64   /* running loops read from _current_tasks */
#define NAMES_MAX 4096   /* task names kept; all forgotten beyond */
#define ATTRS_MAX 256

struct task_name {
    uint64_t coro; /* the coroutine the task ran when its name was read */
    char name[ASYNCIO_TASK_NAME_MAX];
};

struct asyncio_running {
    struct pyrt *rt;
    struct pyobj_cache *c;
    bool found;
    double next_look;
    /* 3.14+ */
    bool per_thread;
    struct asyncio_debug dbg;
    /* 3.8-3.13 */
    const struct asyncio_layout *A;
    uint64_t current;   /* asyncio.tasks._current_tasks (3.14+: the pure-Python tasks') */
    uint64_t task_type; /* _asyncio.Task, once seen (a C type: lives as long as its module) */
    struct addrmap names; /* task -> struct task_name* */
};

struct asyncio_running *asyncio_running_open(struct pyrt *rt, struct pyobj_cache *c)
{
    struct asyncio_running *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->rt = rt;
    r->c = c;
    addrmap_init(&r->names);
    int minor = (int)((rt->version_hex >> 16) & 0xff);
    r->per_thread = rt->version_hex >= 0x030E0000;
    r->A = r->per_thread || rt->free_threaded ? NULL : asyncio_layout_for(minor);
    return r;
}

void asyncio_running_look(struct asyncio_running *r, double now)
{
    if (!r || (r->found && r->current) || now < r->next_look)
        return;
    r->next_look = now + LOOK_EVERY_S;
    const char *why;
    if (r->per_thread && !r->found)
        r->found = asyncio_debug_find(r->rt, &r->dbg, &why);
    if (!r->A && !r->per_thread)
        return; /* free-threaded 3.13t: its tasks are not read yet */
    /* {loop: task}: a C table before 3.14; from 3.14 a dict of the
     * pure-Python Tasks' own (C tasks run as the thread state's task) */
    bool imported;
    uint64_t mdict = pymodule_find(r->rt, r->c, "asyncio.tasks", &imported);
    uint64_t cur = mdict ? pymodule_attr(r->rt, r->c, mdict, "_current_tasks") : 0;
    if (cur && pyobj_type_is(r->rt, cur, "dict")) {
        r->current = cur;
        r->found |= !r->per_thread;
    }
}

static void forget_names(struct asyncio_running *r)
{
    for (size_t i = 0; i < r->names.cap; i++)
        free(r->names.vals[i]);
    addrmap_clear(&r->names);
}

/* Two pointer fields of an object in one read (they sit close). */
static bool two_fields(struct pyrt *rt, uint64_t obj, uint64_t off_a, uint64_t off_b, uint64_t *a,
                       uint64_t *b)
{
    uint64_t lo = off_a < off_b ? off_a : off_b, hi = off_a < off_b ? off_b : off_a;
    uint8_t buf[256];
    if (hi - lo + 8 > sizeof buf)
        return remote_u64(&rt->mem, obj + off_a, a) && remote_u64(&rt->mem, obj + off_b, b);
    if (remote_read(&rt->mem, obj + lo, buf, hi - lo + 8) != 0)
        return false;
    memcpy(a, buf + (off_a - lo), 8);
    memcpy(b, buf + (off_b - lo), 8);
    return true;
}

/* Whether task is a C _asyncio.Task: its type's address once known. */
static bool native_task(struct asyncio_running *r, uint64_t task)
{
    uint64_t type;
    if (!remote_u64(&r->rt->mem, task + (uint64_t)r->rt->layout.obj_type, &type) || !type)
        return false;
    if (r->task_type)
        return type == r->task_type;
    if (!pyobj_type_is(r->rt, task, "_asyncio.Task"))
        return false;
    r->task_type = type;
    return true;
}

/* The task's coroutine and name object: a C Task's fields, or a
 * pure-Python one's attributes. */
static bool task_fields(struct asyncio_running *r, uint64_t task, uint64_t *coro, uint64_t *name)
{
    struct pyrt *rt = r->rt;
    /* (a pure-Python Task runs as the thread's task on 3.14+ too) */
    if (native_task(r, task))
        return r->per_thread
                   ? two_fields(rt, task, r->dbg.task_coro, r->dbg.task_name, coro, name)
                   : two_fields(rt, task, (uint64_t)r->A->task_coro, (uint64_t)r->A->task_name,
                                coro, name);
    struct pydict_entry attrs[ATTRS_MAX];
    int na = pyobj_instance_attrs(rt, task, attrs, ATTRS_MAX);
    *coro = na > 0 ? pydict_find_str(rt, r->c, attrs, na, "_coro") : 0;
    *name = na > 0 ? pydict_find_str(rt, r->c, attrs, na, "_name") : 0;
    return *coro != 0;
}

/* Whether the loop object at `loop` runs on the thread whose state is at
 * tstate: its _thread_id (set by run_forever) is that thread's ident. */
static bool loop_of_thread(struct asyncio_running *r, uint64_t loop, uint64_t tstate)
{
    struct pyrt *rt = r->rt;
    uint64_t ident, id;
    if (rt->layout.ts_thread_id < 0 ||
        !remote_u64(&rt->mem, tstate + (uint64_t)rt->layout.ts_thread_id, &ident))
        return false;
    uint64_t obj = pyobj_attr(rt, r->c, loop, "_thread_id");
    return obj && pyint_u64(rt, obj, &id) && id == ident;
}

bool asyncio_running_loop(struct asyncio_running *r, uint64_t tstate, uint64_t *loop)
{
    *loop = 0;
    if (!r || !r->found || !tstate)
        return false;
    if (r->per_thread)
        return remote_u64(&r->rt->mem, tstate + r->dbg.ts_running_loop, loop) && *loop;
    /* before 3.14 the running loop is in a thread-local no layout tells:
     * a loop that runs a task now is in the {loop: task} table */
    struct pydict_entry cur[CURRENT_MAX];
    int n = r->current ? pydict_entries(r->rt, r->current, cur, CURRENT_MAX) : 0;
    for (int i = 0; i < n; i++)
        if (loop_of_thread(r, cur[i].key, tstate)) {
            *loop = cur[i].key;
            return true;
        }
    return false;
}

bool asyncio_running_task(struct asyncio_running *r, uint64_t tstate, uint64_t loop,
                          uint64_t *task, const char **name)
{
    *task = 0;
    *name = NULL;
    if (!r || !r->found)
        return false;
    struct pyrt *rt = r->rt;
    if (r->per_thread && tstate && !remote_u64(&rt->mem, tstate + r->dbg.ts_running_task, task))
        return false;
    if (!*task) {
        struct pydict_entry cur[CURRENT_MAX];
        int n = r->current ? pydict_entries(rt, r->current, cur, CURRENT_MAX) : 0;
        /* the thread's own loop's entry; without it, the only one (with
         * several loops and the thread's unknown, not told) */
        for (int i = 0; i < n && loop && !*task; i++)
            if (cur[i].key == loop)
                *task = cur[i].value;
        if (!*task && !loop && n == 1)
            *task = cur[0].value;
        if (!*task)
            return false;
    }
    uint64_t coro, name_obj;
    if (!task_fields(r, *task, &coro, &name_obj) || !coro) {
        *task = 0;
        return false;
    }
    struct task_name *tn = addrmap_get(&r->names, *task);
    if (!tn || tn->coro != coro) {
        if (!tn) {
            if (r->names.len >= NAMES_MAX)
                forget_names(r);
            tn = calloc(1, sizeof *tn);
            if (!tn || !addrmap_put(&r->names, *task, tn)) {
                free(tn);
                return false;
            }
        }
        tn->coro = coro;
        tn->name[0] = 0;
        asyncio_task_name(rt, r->c, name_obj, tn->name, sizeof tn->name);
    }
    *name = tn->name[0] ? tn->name : NULL;
    return true;
}

void asyncio_running_close(struct asyncio_running *r)
{
    if (!r)
        return;
    forget_names(r);
    addrmap_free(&r->names);
    free(r);
}
