#include "python/gil.h"

#include <string.h>

uint64_t gil_locate(struct pyrt *rt)
{
    const struct py_layout *L = &rt->layout;
    if (L->rt_gil >= 0)
        return rt->runtime + (uint64_t)L->rt_gil;
    /* 3.12+: per interpreter, through the ceval.gil pointer. */
    uint64_t interp = pyrt_main_interp(rt), gil = 0;
    if (!interp || !remote_u64(&rt->mem, interp + (uint64_t)L->interp_ceval_gil, &gil))
        return 0;
    return gil;
}

uint64_t gil_tstate_current_addr(const struct pyrt *rt)
{
    return rt->layout.rt_tstate_current >= 0
               ? rt->runtime + (uint64_t)rt->layout.rt_tstate_current
               : 0;
}

static uint64_t u64_at(const uint8_t *buf, int32_t off)
{
    uint64_t v;
    memcpy(&v, buf + off, 8);
    return v;
}

void gil_decode(const struct pyrt *rt, uint64_t addr, const uint8_t *buf, uint64_t tstate_current,
                struct gil_state *g)
{
    const struct py_layout *L = &rt->layout;
    int32_t locked;
    memcpy(&locked, buf + L->gil_locked, 4);
    g->addr = addr;
    g->size = (uint32_t)L->gil_size;
    g->locked = locked;
    g->last_holder = u64_at(buf, L->gil_last_holder);
    /* Neither is published by _Py_DebugOffsets: 0 (not measured) then. */
    g->counters_known = py_layout_has_gil_counters(L);
    g->switch_number = g->counters_known ? u64_at(buf, L->gil_switch_number) : 0;
    g->interval_us = g->counters_known ? u64_at(buf, L->gil_interval) : 0;
    g->enabled = true;
    if (L->gil_enabled >= 0) {
        /* Free-threaded: 0 = off; transient or permanent requests count up. */
        int32_t enabled;
        memcpy(&enabled, buf + L->gil_enabled, 4);
        g->enabled = enabled != 0;
        if (!g->enabled) {
            g->locked = 0;
            g->holder = 0;
            return;
        }
    }
    if (L->rt_tstate_current >= 0)
        /* <=3.11 the runtime names the holder; between take_gil and setting
         * it, last_holder is the best answer. */
        g->holder = tstate_current ? tstate_current : (locked == 1 ? g->last_holder : 0);
    else
        g->holder = locked == 1 ? g->last_holder : 0;
}

void gil_read(struct pyrt *rt, struct gil_state *g)
{
    uint8_t buf[GIL_READ_MAX];
    uint64_t cur = 0;
    memset(g, 0, sizeof *g);
    uint64_t addr = gil_locate(rt);
    uint64_t cur_addr = gil_tstate_current_addr(rt);
    if (!addr || rt->layout.gil_size > GIL_READ_MAX ||
        remote_read(&rt->mem, addr, buf, (size_t)rt->layout.gil_size) != 0 ||
        (cur_addr && !remote_u64(&rt->mem, cur_addr, &cur)))
        return;
    gil_decode(rt, addr, buf, cur, g);
}
