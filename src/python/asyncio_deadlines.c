/* Which pending tasks have a timeout running, and when it fires: the
 * timeouts on each loop's timer heap (python/asyncio_timers.h), joined to
 * their task - an asyncio.timeout's Timeout (wait_for's from 3.12) names
 * its task (`_task`); before 3.12 wait_for's timer releases the future
 * its task awaits. A task under several timeouts gets the earliest. */
#include "python/asyncio_deadlines.h"

#include <stdlib.h>

#include "python/asyncio_timers.h"
#include "python/pydict.h"
#include "util/addrmap.h"

#define LOOPS_MAX 16

static void note(struct asyncio_task *t, double when)
{
    if (!t->has_deadline || when < t->deadline) {
        t->deadline = when;
        t->has_deadline = true;
    }
}

/* The task a timeout's target stands for. */
static struct asyncio_task *task_of(struct pyrt *rt, struct pyobj_cache *c,
                                    struct asyncio_tasks *out, const struct addrmap *by_addr,
                                    const struct addrmap *by_waiter, uint64_t target)
{
    if (pyobj_type_named(rt, c, target, "Timeout")) {
        uint64_t task = pyobj_attr(rt, c, target, "_task");
        uintptr_t at = task ? (uintptr_t)addrmap_get(by_addr, task) : 0;
        return at ? &out->v[at - 1] : NULL;
    }
    uintptr_t at = (uintptr_t)addrmap_get(by_waiter, target);
    return at ? &out->v[at - 1] : NULL;
}

void asyncio_deadlines_read(struct pyrt *rt, struct pyobj_cache *c, struct asyncio_tasks *out)
{
    uint64_t loops[LOOPS_MAX];
    size_t nloops = 0;
    struct addrmap by_addr, by_waiter;
    addrmap_init(&by_addr);
    addrmap_init(&by_waiter);
    for (uint32_t i = 0; i < out->n; i++) {
        struct asyncio_task *t = &out->v[i];
        t->has_deadline = false;
        addrmap_put(&by_addr, t->addr, (void *)(uintptr_t)(i + 1));
        if (t->waiter)
            addrmap_put(&by_waiter, t->waiter, (void *)(uintptr_t)(i + 1));
        size_t k = 0;
        while (k < nloops && loops[k] != t->loop)
            k++;
        if (k == nloops && nloops < LOOPS_MAX && t->loop)
            loops[nloops++] = t->loop;
    }
    struct asyncio_timers *r = nloops ? asyncio_timers_open(rt, c) : NULL;
    struct asyncio_timer *heap = r ? calloc(ASYNCIO_TIMERS_MAX, sizeof *heap) : NULL;
    asyncio_timers_want_targets(r, true);
    for (size_t k = 0; heap && k < nloops; k++) {
        uint64_t total;
        int n = asyncio_timers_read(r, loops[k], heap, ASYNCIO_TIMERS_MAX, &total);
        for (int i = 0; i < n; i++) {
            if (!heap[i].timeout || heap[i].cancelled || !heap[i].target)
                continue;
            struct asyncio_task *t = task_of(rt, c, out, &by_addr, &by_waiter, heap[i].target);
            if (t && t->loop == loops[k])
                note(t, heap[i].when);
        }
    }
    free(heap);
    asyncio_timers_close(r);
    addrmap_free(&by_addr);
    addrmap_free(&by_waiter);
}
