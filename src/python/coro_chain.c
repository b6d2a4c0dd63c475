/* Following a coroutine's awaits from outside: see python/coro_chain.h.
 * What CPython's own _PyGen_yf() does, per version. */
#include "python/coro_chain.h"

#include <string.h>

#define STACK_DEPTH_MAX 100000 /* a frame's value stack, at most (a sanity bound) */

bool coro_chain_supported(const struct pyrt *rt)
{
    const struct py_layout *L = &rt->layout;
    switch (L->gen_yf_model) {
    case 0: return L->gen_frame >= 0 && L->code_code >= 0 && L->frameobj_valuestack >= 0;
    case 1: return L->gen_iframe >= 0 && L->op_resume >= 0 && L->iframe_stacktop >= 0 &&
                   L->gen_yf_depth > 0;
    case 2: return L->gen_iframe >= 0 && L->gen_state_yf_plus128 >= 0 && L->gen_yf_depth > 0 &&
                   (L->iframe_stacktop >= 0 || L->iframe_stackpointer >= 0);
    default: return false;
    }
}

static bool is_generator_like(struct pyrt *rt, struct pyobj_cache *c, uint64_t obj)
{
    return pyobj_type_named(rt, c, obj, "coroutine") || pyobj_type_named(rt, c, obj, "generator");
}

/* 3.8-3.10: the object on top of a frame object's value stack when the
 * next instruction is YIELD_FROM (an `await` compiles to one); 0 else -
 * running (no saved stack), not started, or at a plain `yield`. */
static uint64_t awaited_by_frame_object(struct pyrt *rt, const struct raw_frame *f)
{
    const struct py_layout *L = &rt->layout;
    uint64_t top = 0, valuestack, code_bytes;
    int64_t lasti = (int64_t)f->pos;
    if (lasti < 0)
        return 0;
    if (L->frameobj_stacktop >= 0) {
        if (!remote_u64(&rt->mem, f->addr + (uint64_t)L->frameobj_stacktop, &top) || !top)
            return 0;
    } else {
        int32_t depth;
        if (!remote_u64(&rt->mem, f->addr + (uint64_t)L->frameobj_valuestack, &valuestack) ||
            remote_read(&rt->mem, f->addr + (uint64_t)L->frameobj_stackdepth, &depth, 4) != 0 ||
            depth <= 0 || depth > STACK_DEPTH_MAX)
            return 0;
        top = valuestack + 8u * (uint64_t)depth;
    }
    uint8_t op;
    uint64_t at = (uint64_t)lasti * (uint64_t)L->lasti_scale + 2; /* the next instruction */
    if (!remote_u64(&rt->mem, f->code + (uint64_t)L->code_code, &code_bytes) ||
        remote_read(&rt->mem, code_bytes + (uint64_t)L->bytes_data + at, &op, 1) != 0 ||
        op != (uint8_t)L->op_yield_from)
        return 0;
    uint64_t yf;
    return remote_u64(&rt->mem, top - 8, &yf) ? yf : 0;
}

/* 3.11+: the awaited object in the value stack of an interpreter frame
 * suspended in an await (gen_yf_depth from its top). */
static uint64_t awaited_in_stack(struct pyrt *rt, uint64_t iframe)
{
    const struct py_layout *L = &rt->layout;
    uint64_t v;
    if (L->iframe_stackpointer >= 0) {
        uint64_t sp;
        if (!remote_u64(&rt->mem, iframe + (uint64_t)L->iframe_stackpointer, &sp) ||
            sp < 8u * (uint64_t)L->gen_yf_depth ||
            !remote_u64(&rt->mem, sp - 8u * (uint64_t)L->gen_yf_depth, &v))
            return 0;
        return v & ~(uint64_t)3; /* a _PyStackRef: tag bits */
    }
    int32_t top;
    if (remote_read(&rt->mem, iframe + (uint64_t)L->iframe_stacktop, &top, 4) != 0 ||
        top < L->gen_yf_depth || top > STACK_DEPTH_MAX)
        return 0;
    uint64_t at = iframe + (uint64_t)L->iframe_localsplus + 8u * (uint64_t)(top - L->gen_yf_depth);
    return remote_u64(&rt->mem, at, &v) ? v : 0;
}

/* 3.11+: what the generator at gen awaits (its frame at f), or 0. */
static uint64_t awaited_by_generator(struct pyrt *rt, uint64_t gen, const struct raw_frame *f)
{
    const struct py_layout *L = &rt->layout;
    int8_t state;
    if (remote_read(&rt->mem, gen + (uint64_t)L->gen_frame_state, &state, 1) != 0)
        return 0;
    if (L->gen_yf_model == 2) {
        if (state != L->gen_state_yf_plus128 - 128)
            return 0;
    } else {
        /* suspended (not running, not finished) and about to resume after
         * a `yield from`/`await` (RESUME's oparg 2 or 3) */
        uint8_t next[2];
        if (state >= L->gen_state_executing_plus128 - 128 ||
            remote_read(&rt->mem, f->pos + 2, next, 2) != 0 ||
            (next[0] != L->op_resume && next[0] != L->op_resume_alt) || next[1] < 2)
            return 0;
    }
    return awaited_in_stack(rt, f->addr);
}

void coro_chain_read(struct pyrt *rt, struct pyobj_cache *c, uint64_t coro, struct coro_chain *out)
{
    const struct py_layout *L = &rt->layout;
    memset(out, 0, sizeof *out);
    if (!coro_chain_supported(rt))
        return;
    uint64_t obj = coro;
    while (obj && is_generator_like(rt, c, obj)) {
        if (out->n == CORO_CHAIN_MAX) {
            out->truncated = true;
            return;
        }
        for (int i = 0; i < out->n; i++)
            if (out->frames[i].addr == obj) { /* a cycle: garbage, not a chain */
                out->truncated = true;
                return;
            }
        struct raw_frame *f = &out->frames[out->n];
        uint64_t frame = 0;
        if (L->gen_yf_model == 0) {
            if (!remote_u64(&rt->mem, obj + (uint64_t)L->gen_frame, &frame) || !frame)
                return; /* finished */
        } else {
            frame = obj + (uint64_t)L->gen_iframe;
        }
        if (!stackwalk_read_frame(rt, frame, f))
            return;
        out->n++;
        uint64_t next = L->gen_yf_model == 0 ? awaited_by_frame_object(rt, f)
                                             : awaited_by_generator(rt, obj, f);
        /* the frame's address doubles as the cycle check's key */
        f->addr = obj;
        obj = next;
    }
    out->leaf = obj;
}
