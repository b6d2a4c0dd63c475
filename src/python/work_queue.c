/* The queue a pool's workers take work from (see python/work_queue.h).
 *
 * `_queue.SimpleQueue` is private to Modules/_queuemodule.c (no header to
 * generate a layout from); its fields are placed from the object's end
 * (tp_basicsize), measured with ctypes on every interpreter here: up to
 * 3.12 (basicsize 56) it ends {PyObject *lst; Py_ssize_t lst_pos;
 * PyObject *weakreflist}, the items being lst[lst_pos:]; from 3.13 (72) a
 * ring buffer {..., items, items_cap, num_items} then weakreflist.
 * tests/integration/test_idle_waits.py proves both on a pool that keeps a
 * known number of items queued. */
#include "python/work_queue.h"

#include "python/pyobj.h"

#define ARGS_MAX 8            /* a Thread's args looked at */
#define QUEUE_ITEMS_MAX (1LL << 40)

static bool read_u64(struct pyrt *rt, uint64_t addr, uint64_t *v)
{
    return addr && remote_u64(&rt->mem, addr, v);
}

uint64_t work_queue_in_args(struct pyrt *rt, uint64_t args)
{
    const struct py_layout *L = &rt->layout;
    uint64_t n, type, items;
    /* A tuple's items start at its type's tp_basicsize (the struct without
     * its one-item array): 24, and 32 from 3.14, which caches the hash in
     * the tuple (measured). */
    if (L->bytes_size < 0 || L->type_basicsize < 0 || !pyobj_type_is(rt, args, "tuple") ||
        !read_u64(rt, args + (uint64_t)L->bytes_size, &n) ||
        !read_u64(rt, args + (uint64_t)L->obj_type, &type) ||
        !read_u64(rt, type + (uint64_t)L->type_basicsize, &items) || items < 16 || items > 64)
        return 0;
    for (uint64_t i = 0; i < n && i < ARGS_MAX; i++) {
        uint64_t item;
        if (read_u64(rt, args + items + 8 * i, &item) && item &&
            pyobj_type_is(rt, item, "_queue.SimpleQueue"))
            return item;
    }
    return 0;
}

bool work_queue_depth(struct pyrt *rt, uint64_t queue, int64_t *depth)
{
    const struct py_layout *L = &rt->layout;
    uint64_t type, end;
    if (!queue || !read_u64(rt, queue + (uint64_t)L->obj_type, &type) ||
        !read_u64(rt, type + (uint64_t)L->type_basicsize, &end) || end < 40 || end > 256)
        return false;
    uint64_t a, b;
    if (!read_u64(rt, queue + end - 24, &a) || !read_u64(rt, queue + end - 16, &b))
        return false;
    if (L->version_hex >= 0x030d0000) { /* a ring: items_cap, num_items */
        if ((int64_t)b < 0 || b > a || (int64_t)a > QUEUE_ITEMS_MAX)
            return false;
        *depth = (int64_t)b;
        return true;
    }
    uint64_t len; /* lst, lst_pos: the items are lst[lst_pos:]; ob_size as a bytes object's */
    if (!pyobj_type_is(rt, a, "list") || !read_u64(rt, a + (uint64_t)L->bytes_size, &len) ||
        (int64_t)len < 0 || (int64_t)len > QUEUE_ITEMS_MAX || b > len)
        return false;
    *depth = (int64_t)(len - b);
    return true;
}
