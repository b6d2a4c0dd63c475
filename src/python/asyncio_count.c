/* How many asyncio tasks are alive: see python/asyncio_count.h. */
#include "python/asyncio_count.h"

#include <stdlib.h>

#include "python/asyncio_debug.h"
#include "python/pydict.h"
#include "target/remote.h"

#define LOOK_EVERY_S 5.0

struct asyncio_count {
    struct pyrt *rt;
    struct pyobj_cache *c;
    bool per_thread;
    double next_look;
    /* 3.14+ */
    bool found;
    struct asyncio_debug dbg;
    /* 3.8-3.13: the registry's sets (the WeakSet's data; the eager set) */
    uint64_t sets[2];
    uint64_t set_type;
};

struct asyncio_count *asyncio_count_open(struct pyrt *rt, struct pyobj_cache *c)
{
    struct asyncio_count *ac = calloc(1, sizeof *ac);
    if (!ac)
        return NULL;
    ac->rt = rt;
    ac->c = c;
    ac->per_thread = rt->version_hex >= 0x030E0000;
    return ac;
}

bool asyncio_count_per_thread(const struct asyncio_count *ac)
{
    return ac && ac->per_thread;
}


static void look(struct asyncio_count *ac, double now)
{
    if (now < ac->next_look)
        return;
    ac->next_look = now + LOOK_EVERY_S;
    const char *why;
    if (ac->per_thread) {
        ac->found = asyncio_debug_find(ac->rt, &ac->dbg, &why);
        return;
    }
    bool imported;
    uint64_t mdict = pymodule_find(ac->rt, ac->c, "asyncio.tasks", &imported);
    if (!mdict)
        return;
    int minor = (int)((ac->rt->version_hex >> 16) & 0xff);
    uint64_t weak =
        pymodule_attr(ac->rt, ac->c, mdict, minor >= 12 ? "_scheduled_tasks" : "_all_tasks");
    ac->sets[0] = pyobj_attr(ac->rt, ac->c, weak, "data"); /* the set behind the WeakSet */
    ac->sets[1] = minor >= 12 ? pymodule_attr(ac->rt, ac->c, mdict, "_eager_tasks") : 0;
    if (ac->sets[0] && pyobj_type_is(ac->rt, ac->sets[0], "set"))
        remote_u64(&ac->rt->mem, ac->sets[0] + (uint64_t)ac->rt->layout.obj_type, &ac->set_type);
    else
        ac->sets[0] = ac->sets[1] = 0;
}

/* 3.14+: the thread's circular list, one read per node. */
static bool count_list(struct asyncio_count *ac, uint64_t tstate, uint64_t *n)
{
    uint64_t head = tstate + ac->dbg.ts_tasks_head, node;
    if (!remote_u64(&ac->rt->mem, head, &node))
        return false;
    *n = 0;
    /* Brent's cycle detection: a loop that misses the head (garbage, or a
     * list changed under us) is caught with no extra read */
    uint64_t mark = node, power = 1, lam = 0;
    while (node && node != head && *n < ASYNCIO_COUNT_MAX) {
        if (!remote_u64(&ac->rt->mem, node, &node))
            return false; /* a task freed under us: this count is dropped */
        (*n)++;
        if (node == mark)
            return false;
        if (++lam == power) {
            mark = node;
            power *= 2;
            lam = 0;
        }
    }
    return node == head || *n == ASYNCIO_COUNT_MAX;
}

/* 3.8-3.13: the sets' sizes; each set's type is checked again (the
 * registry is the module's for its whole life, but memory is hostile). */
static bool count_sets(struct asyncio_count *ac, uint64_t *n)
{
    const struct py_layout *L = &ac->rt->layout;
    *n = 0;
    for (int i = 0; i < 2; i++) {
        uint64_t type, used;
        if (!ac->sets[i])
            continue;
        if (!remote_u64(&ac->rt->mem, ac->sets[i] + (uint64_t)L->obj_type, &type) ||
            type != ac->set_type ||
            !remote_u64(&ac->rt->mem, ac->sets[i] + (uint64_t)L->set_used, &used) ||
            used > ASYNCIO_COUNT_MAX) {
            ac->sets[0] = ac->sets[1] = 0;
            ac->next_look = 0;
            return false;
        }
        *n += used;
    }
    return true;
}

bool asyncio_count_tasks(struct asyncio_count *ac, uint64_t tstate, double now, uint64_t *n)
{
    if (!ac || ac->rt->layout.set_used < 0)
        return false;
    if (ac->per_thread ? !ac->found : !ac->sets[0])
        look(ac, now);
    if (ac->per_thread)
        return ac->found && tstate && count_list(ac, tstate, n);
    return ac->sets[0] && count_sets(ac, n);
}

void asyncio_count_close(struct asyncio_count *ac)
{
    free(ac);
}
