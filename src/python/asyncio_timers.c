/* An event loop's timer heap: see python/asyncio_timers.h. */
#include "python/asyncio_timers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "python/pydict.h"
#include "target/remote.h"
#include "util/addrmap.h"

#define TYPE_ATTRS_MAX 64
#define SLOT_MAX 4096     /* a slot further into an object than this is garbage */
#define BLOCK_MAX 160     /* bytes read of each handle: its header and three slots */
#define FLOAT_SPAN_MAX 64 /* a float's type and value, read together */
#define FUNCS_MAX 1024    /* callbacks remembered as timeout or not; all forgotten beyond */

enum callback_kind { CB_UNKNOWN = 0, CB_TIMEOUT = 1, CB_OTHER = 2 };

struct asyncio_timers {
    struct pyrt *rt;
    struct pyobj_cache *c;
    /* TimerHandle's type and where its slots are, once found */
    uint64_t handle_type;
    uint32_t off_when, off_cancelled, off_callback, off_args, block;
    bool want_targets;
    uint64_t true_obj, false_obj, float_type;
    uint64_t method_type, function_type, other_types[8];
    struct addrmap funcs; /* function -> (void *)CB_TIMEOUT or CB_OTHER */
    /* scratch, ASYNCIO_TIMERS_MAX each */
    uint64_t *items;
    uint8_t *blocks, *floats;
    struct remote_req *reqs, *mreqs;
    uint64_t *words, *vals, *mfunc, *whenptr;
    int *mout;
};

struct asyncio_timers *asyncio_timers_open(struct pyrt *rt, struct pyobj_cache *c)
{
    struct asyncio_timers *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->rt = rt;
    r->c = c;
    addrmap_init(&r->funcs);
    r->items = calloc(ASYNCIO_TIMERS_MAX, 8);
    r->blocks = calloc(ASYNCIO_TIMERS_MAX, BLOCK_MAX);
    r->reqs = calloc(2 * ASYNCIO_TIMERS_MAX, sizeof *r->reqs);
    r->words = calloc(2 * ASYNCIO_TIMERS_MAX, 8);
    r->vals = calloc(2 * ASYNCIO_TIMERS_MAX, 8);
    r->floats = calloc(ASYNCIO_TIMERS_MAX, FLOAT_SPAN_MAX);
    r->mreqs = calloc(ASYNCIO_TIMERS_MAX, sizeof *r->mreqs);
    r->mfunc = calloc(ASYNCIO_TIMERS_MAX, 8);
    r->whenptr = calloc(ASYNCIO_TIMERS_MAX, 8);
    r->mout = calloc(ASYNCIO_TIMERS_MAX, sizeof *r->mout);
    if (!r->items || !r->blocks || !r->reqs || !r->words || !r->vals || !r->floats || !r->mreqs ||
        !r->mfunc || !r->whenptr || !r->mout) {
        asyncio_timers_close(r);
        return NULL;
    }
    return r;
}

void asyncio_timers_want_targets(struct asyncio_timers *r, bool want)
{
    if (r)
        r->want_targets = want;
}

void asyncio_timers_close(struct asyncio_timers *r)
{
    if (!r)
        return;
    addrmap_free(&r->funcs);
    free(r->items);
    free(r->blocks);
    free(r->reqs);
    free(r->words);
    free(r->vals);
    free(r->floats);
    free(r->mreqs);
    free(r->mfunc);
    free(r->whenptr);
    free(r->mout);
    free(r);
}

/* Where the member `name` of a class sits in its instances: its member
 * descriptor in the class's dict, or in its base class's. 0: not found. */
static uint32_t slot_offset(struct asyncio_timers *r, uint64_t type, const char *name)
{
    struct pyrt *rt = r->rt;
    const struct py_layout *L = &rt->layout;
    for (int depth = 0; depth < 3 && type; depth++) {
        uint64_t dict, def, base;
        int64_t off;
        struct pydict_entry e[TYPE_ATTRS_MAX];
        if (!remote_u64(&rt->mem, type + (uint64_t)L->type_dict, &dict))
            return 0;
        int n = dict ? pydict_entries(rt, dict, e, TYPE_ATTRS_MAX) : -1;
        uint64_t descr = n > 0 ? pydict_find_str(rt, r->c, e, n, name) : 0;
        if (descr) {
            if (!pyobj_type_is(rt, descr, "member_descriptor") ||
                !remote_u64(&rt->mem, descr + (uint64_t)L->memberdescr_member, &def) || !def ||
                remote_read(&rt->mem, def + (uint64_t)L->memberdef_offset, &off, 8) != 0 ||
                off < 8 || off > SLOT_MAX || off % 8)
                return 0;
            return (uint32_t)off;
        }
        if (!remote_u64(&rt->mem, type + (uint64_t)L->type_base, &base))
            return 0;
        type = base;
    }
    return 0;
}

/* The handle class's slots, found from the first handle of a heap. */
static bool learn_handle_type(struct asyncio_timers *r, uint64_t handle)
{
    struct pyrt *rt = r->rt;
    uint64_t type;
    if (!remote_u64(&rt->mem, handle + (uint64_t)rt->layout.obj_type, &type) || !type)
        return false;
    if (type == r->handle_type)
        return true;
    if (!pyobj_type_is(rt, handle, "TimerHandle"))
        return false;
    uint32_t when = slot_offset(r, type, "_when");
    uint32_t cancelled = slot_offset(r, type, "_cancelled");
    uint32_t callback = slot_offset(r, type, "_callback");
    uint32_t args = slot_offset(r, type, "_args");
    uint32_t hi = when > cancelled ? when : cancelled;
    hi = hi > callback ? hi : callback;
    if (!when || !cancelled || !callback || hi + 8 > BLOCK_MAX ||
        (uint32_t)rt->layout.obj_type + 8 > BLOCK_MAX)
        return false;
    r->handle_type = type;
    r->off_when = when;
    r->off_cancelled = cancelled;
    r->off_callback = callback;
    r->off_args = args; /* (0: unknown; only targets need it) */
    r->block = hi + 8;
    return true;
}

static bool is_cancelled(struct asyncio_timers *r, uint64_t obj)
{
    if (obj && obj == r->true_obj)
        return true;
    if (obj && obj == r->false_obj)
        return false;
    bool v;
    if (!pybool(r->rt, obj, &v))
        return false;
    *(v ? &r->true_obj : &r->false_obj) = obj;
    return v;
}

/* A function's code: _release_waiter in asyncio/tasks.py (wait_for and
 * wait before 3.12) or Timeout._on_timeout in asyncio/timeouts.py. */
static enum callback_kind function_kind(struct asyncio_timers *r, uint64_t func)
{
    void *known = addrmap_get(&r->funcs, func);
    if (known)
        return (enum callback_kind)(uintptr_t)known;
    struct pyrt *rt = r->rt;
    uint64_t code;
    enum callback_kind k = CB_OTHER;
    if (rt->layout.func_code >= 0 &&
        remote_u64(&rt->mem, func + (uint64_t)rt->layout.func_code, &code)) {
        struct code_info *ci = pyobj_code(rt, r->c, code);
        const char *name = ci && ci->name ? ci->name : "";
        const char *bare = strrchr(name, '.') ? strrchr(name, '.') + 1 : name;
        size_t fl = ci && ci->filename ? strlen(ci->filename) : 0;
        if (fl && ((strcmp(bare, "_release_waiter") == 0 && fl >= 16 &&
                    strcmp(ci->filename + fl - 16, "asyncio/tasks.py") == 0) ||
                   (strcmp(bare, "_on_timeout") == 0 && fl >= 19 &&
                    strcmp(ci->filename + fl - 19, "asyncio/timeouts.py") == 0)))
            k = CB_TIMEOUT;
    }
    if (r->funcs.len >= FUNCS_MAX)
        addrmap_clear(&r->funcs);
    addrmap_put(&r->funcs, func, (void *)(uintptr_t)k);
    return k;
}

/* Whether a callback of type `type` is a bound method (1), a function
 * (2) or neither (0): each type's name is read once. */
static int callback_type(struct asyncio_timers *r, uint64_t cb, uint64_t type)
{
    if (!type)
        return 0;
    if (type == r->method_type)
        return 1;
    if (type == r->function_type)
        return 2;
    for (size_t i = 0; i < sizeof r->other_types / sizeof r->other_types[0]; i++)
        if (r->other_types[i] == type)
            return 0;
    char name[32];
    if (!pyobj_type_name(r->rt, cb, name, sizeof name))
        return 0;
    if (strcmp(name, "method") == 0) {
        r->method_type = type;
        return 1;
    }
    if (strcmp(name, "function") == 0) {
        r->function_type = type;
        return 2;
    }
    memmove(r->other_types + 1, r->other_types, sizeof r->other_types - 8);
    r->other_types[0] = type;
    return 0;
}

/* The handles that still hold the deadline object read: one freed (and
 * its float reused) between the reads is dropped. */
static int still_there(struct asyncio_timers *r, struct asyncio_timer *out, int k)
{
    for (int i = 0; i < k; i++)
        r->reqs[i] = (struct remote_req){out[i].handle + r->off_when, &r->vals[i], 8, false};
    remote_readv(&r->rt->mem, r->reqs, (size_t)k);
    int m = 0;
    for (int i = 0; i < k; i++)
        if (r->reqs[i].ok && r->vals[i] == r->whenptr[i])
            out[m++] = out[i];
    return m;
}

static int by_handle(const void *a, const void *b)
{
    uint64_t x = ((const struct asyncio_timer *)a)->handle;
    uint64_t y = ((const struct asyncio_timer *)b)->handle;
    return (x > y) - (x < y);
}

/* Each handle once: a heap read while the loop sifts it can hold one
 * handle at two places (seen: 14 timeouts pending for 8 waiters). */
static int unique(struct asyncio_timer *out, int k)
{
    qsort(out, (size_t)k, sizeof *out, by_handle);
    int m = 0;
    for (int i = 0; i < k; i++)
        if (!m || out[i].handle != out[m - 1].handle)
            out[m++] = out[i];
    return m;
}

/* The first of a handle's arguments (wait_for's waiter future, given to
 * _release_waiter); 0 when unreadable. */
static uint64_t first_arg(struct asyncio_timers *r, uint64_t handle)
{
    uint64_t args, item[1];
    if (!remote_u64(&r->rt->mem, handle + r->off_args, &args) || !args ||
        pytuple_items(r->rt, args, item, 1) != 1)
        return 0;
    return item[0];
}

/* The loop's _scheduled list; 0 when it has none. */
static uint64_t scheduled_list(struct asyncio_timers *r, uint64_t loop)
{
    return pyobj_attr(r->rt, r->c, loop, "_scheduled");
}

int asyncio_timers_read(struct asyncio_timers *r, uint64_t loop, struct asyncio_timer *out, int max,
                        uint64_t *total)
{
    *total = 0;
    if (!r || !loop || max <= 0)
        return -1;
    struct pyrt *rt = r->rt;
    const struct py_layout *L = &rt->layout;
    if (L->type_dict < 0 || L->type_base < 0 || L->memberdescr_member < 0 ||
        L->memberdef_offset < 0 || L->float_value < 0 || L->method_func < 0)
        return -1; /* a version read through its _Py_DebugOffsets alone */
    if (max > ASYNCIO_TIMERS_MAX)
        max = ASYNCIO_TIMERS_MAX;
    uint64_t list = scheduled_list(r, loop);
    int n = list ? pylist_prefix(rt, list, r->items, max, total) : -1;
    if (n <= 0 || !learn_handle_type(r, r->items[0]))
        return n < 0 ? -1 : 0;
    /* 1: each handle's header and slots */
    for (int i = 0; i < n; i++)
        r->reqs[i] =
            (struct remote_req){r->items[i], r->blocks + (size_t)i * BLOCK_MAX, r->block, false};
    remote_readv(&rt->mem, r->reqs, (size_t)n);
    int m = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *b = r->blocks + (size_t)i * BLOCK_MAX;
        uint64_t type, when, cancelled, callback;
        memcpy(&type, b + L->obj_type, 8);
        memcpy(&when, b + r->off_when, 8);
        memcpy(&cancelled, b + r->off_cancelled, 8);
        memcpy(&callback, b + r->off_callback, 8);
        if (!r->reqs[i].ok || type != r->handle_type || !when)
            continue; /* freed under us, or not a TimerHandle: dropped */
        out[m] =
            (struct asyncio_timer){.handle = r->items[i], .cancelled = is_cancelled(r, cancelled)};
        /* the callback stands in r->words[2m + 1] until its type is read */
        r->words[2 * m] = when;
        r->words[2 * m + 1] = callback;
        m++;
    }
    /* 2: each deadline's value and each callback's type */
    uint64_t *vals = r->vals;
    /* a deadline is read with its type (a float freed and reused under us
     * is dropped): the two words from whichever comes first */
    uint32_t flo = (uint32_t)(L->obj_type < L->float_value ? L->obj_type : L->float_value);
    uint32_t fspan =
        (uint32_t)(L->obj_type < L->float_value ? L->float_value : L->obj_type) + 8 - flo;
    if (fspan > FLOAT_SPAN_MAX)
        return -1;
    for (int i = 0; i < m; i++) {
        r->reqs[2 * i] = (struct remote_req){r->words[2 * i] + flo,
                                             r->floats + (size_t)i * FLOAT_SPAN_MAX, fspan, false};
        r->reqs[2 * i + 1] = (struct remote_req){r->words[2 * i + 1] + (uint64_t)L->obj_type,
                                                 &vals[2 * i + 1], 8, false};
    }
    remote_readv(&rt->mem, r->reqs, 2 * (size_t)m);
    int k = 0;
    size_t nmethods = 0;
    for (int i = 0; i < m; i++) {
        struct asyncio_timer t = out[i];
        const uint8_t *fb = r->floats + (size_t)i * FLOAT_SPAN_MAX;
        uint64_t ftype;
        memcpy(&ftype, fb + (L->obj_type - flo), 8);
        memcpy(&t.when, fb + (L->float_value - flo), 8);
        if (!r->reqs[2 * i].ok || !ftype || !isfinite(t.when) || t.when < 0)
            continue;
        if (ftype != r->float_type) {
            if (r->float_type || !pyobj_type_is(rt, r->words[2 * i], "float"))
                continue;
            r->float_type = ftype;
        }
        uint64_t cb = r->words[2 * i + 1];
        int kind = r->reqs[2 * i + 1].ok ? callback_type(r, cb, vals[2 * i + 1]) : 0;
        if (kind == 2)
            t.timeout = function_kind(r, cb) == CB_TIMEOUT;
        if (kind == 1) { /* a bound method: its function is read below */
            r->mreqs[nmethods] =
                (struct remote_req){cb + (uint64_t)L->method_func, &r->mfunc[nmethods], 8, false};
            r->mout[nmethods++] = k;
        }
        r->whenptr[k] = r->words[2 * i];
        out[k++] = t;
    }
    /* 3: the bound methods' functions (a Timeout's _on_timeout) */
    remote_readv(&rt->mem, r->mreqs, nmethods);
    for (size_t j = 0; j < nmethods; j++)
        if (r->mreqs[j].ok && r->mfunc[j])
            out[r->mout[j]].timeout = function_kind(r, r->mfunc[j]) == CB_TIMEOUT;
    if (r->want_targets)
        for (size_t j = 0; j < nmethods; j++)
            if (out[r->mout[j]].timeout)
                remote_u64(&rt->mem,
                           r->mreqs[j].addr - (uint64_t)L->method_func + (uint64_t)L->method_self,
                           &out[r->mout[j]].target);
    k = still_there(r, out, k);
    k = unique(out, k);
    if (r->want_targets && r->off_args)
        for (int i = 0; i < k; i++)
            if (out[i].timeout && !out[i].target)
                out[i].target = first_arg(r, out[i].handle);
    return k;
}
