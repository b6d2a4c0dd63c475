/* An asyncio event loop's scheduled timers, read from outside: the heap
 * of TimerHandles in loop._scheduled (a BaseEventLoop's: the selector and
 * proactor loops; uvloop keeps its timers in libuv, not read). Each
 * handle's deadline (_when, on the loop's clock: time.monotonic(), the
 * CLOCK_MONOTONIC this process reads too), whether it was cancelled, and
 * whether it is a timeout: asyncio.wait_for / asyncio.wait's
 * _release_waiter (3.8-3.11) or an asyncio.timeout's _on_timeout (3.11+,
 * and wait_for from 3.12). The handle's __slots__ are found through the
 * member descriptors of its class, not assumed. A read is a handful of
 * batched reads however many timers there are (at most max). */
#ifndef GILPROBE_ASYNCIO_TIMERS_H
#define GILPROBE_ASYNCIO_TIMERS_H
#include <stdbool.h>
#include <stdint.h>

#include "python/pyobj.h"
#include "python/pyrt.h"

#define ASYNCIO_TIMERS_MAX 1024 /* timers one read looks at: the heap's first */

struct asyncio_timer {
    uint64_t handle; /* the TimerHandle object */
    double when;     /* its deadline, CLOCK_MONOTONIC seconds */
    bool cancelled;
    bool timeout;    /* a wait_for / timeout deadline */
    /* whose deadline, when asked for (asyncio_timers_want_targets): the
     * Timeout object (asyncio.timeout, wait_for from 3.12) or the future
     * wait_for waits on (before 3.12); 0 when not read */
    uint64_t target;
};

struct asyncio_timers;

struct asyncio_timers *asyncio_timers_open(struct pyrt *rt, struct pyobj_cache *c);
/* Up to max timers of the loop object at `loop` (the heap's first, each
 * once, in no particular order); *total: how many it has. -1 when the loop keeps no
 * readable timer heap (not a BaseEventLoop, or garbage). */
int asyncio_timers_read(struct asyncio_timers *r, uint64_t loop, struct asyncio_timer *out, int max,
                        uint64_t *total);
/* Also read each timeout's target (a few more reads per timeout: for a
 * dump, not for every sample). */
void asyncio_timers_want_targets(struct asyncio_timers *r, bool want);
void asyncio_timers_close(struct asyncio_timers *r);

#endif
