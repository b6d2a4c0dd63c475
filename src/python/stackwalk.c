#include "python/stackwalk.h"

#include <stdlib.h>
#include <string.h>

#define FRAME_READ STACK_FRAME_READ
/* How far down the previous stack a frame is looked for: stacks change at
 * the top, and a deeper match just costs a full walk. */
#define REUSE_SEARCH 64

static uint64_t u64_at(const uint8_t *buf, int32_t off)
{
    uint64_t v = 0;
    if (off >= 0)
        memcpy(&v, buf + off, 8);
    return v;
}

int32_t stackwalk_root_offset(const struct py_layout *L)
{
    switch (L->frame_model) {
    case FRAME_OBJECTS: return L->ts_frame;
    case FRAME_CFRAME: return L->ts_cframe;
    default: return L->ts_current_frame;
    }
}

static size_t frame_read_len(const struct py_layout *L)
{
    int32_t end;
    if (L->frame_model == FRAME_OBJECTS) {
        end = L->frameobj_lasti + 4;
        if (L->frameobj_code + 8 > end)
            end = L->frameobj_code + 8;
        if (L->frameobj_back + 8 > end)
            end = L->frameobj_back + 8;
    } else {
        end = L->iframe_owner + 1;
        int32_t offs[] = {L->iframe_code, L->iframe_instr, L->iframe_previous};
        for (size_t i = 0; i < 3; i++)
            if (offs[i] + 8 > end)
                end = offs[i] + 8;
        if (L->iframe_tlbc_index + 4 > end)
            end = L->iframe_tlbc_index + 4;
    }
    return (size_t)end;
}

static void decode(const struct py_layout *L, uint64_t addr, const uint8_t *buf,
                   struct raw_frame *r)
{
    r->addr = addr;
    if (L->frame_model == FRAME_OBJECTS) {
        int32_t lasti;
        memcpy(&lasti, buf + L->frameobj_lasti, 4);
        r->code = u64_at(buf, L->frameobj_code);
        r->pos = (uint64_t)(int64_t)lasti;
        r->previous = u64_at(buf, L->frameobj_back);
        r->owner = 0;
        r->tlbc = 0;
        r->entry = true; /* one eval call per frame up to 3.10 */
    } else {
        /* 3.14 tags the code reference's low bits (_PyStackRef: two in
         * the default build, one in the free-threaded one). */
        r->code = u64_at(buf, L->iframe_code) & ~(uint64_t)3;
        r->pos = u64_at(buf, L->iframe_instr);
        r->tlbc = 0;
        if (L->iframe_tlbc_index >= 0)
            memcpy(&r->tlbc, buf + L->iframe_tlbc_index, 4);
        r->previous = u64_at(buf, L->iframe_previous);
        r->owner = buf[L->iframe_owner];
        /* 3.11 marks entry frames with a flag (bool is_entry, just before
         * owner); 3.12+ pushes a C-stack-owned shim frame below them. */
        r->entry = L->frame_model == FRAME_CFRAME && L->owner_cstack < 0 &&
                   buf[L->iframe_owner - 1] != 0;
    }
}

bool stackwalk_read_frame(struct pyrt *rt, uint64_t addr, struct raw_frame *out)
{
    uint8_t buf[FRAME_READ];
    size_t len = frame_read_len(&rt->layout);
    if (!addr || len > sizeof buf || remote_read(&rt->mem, addr, buf, len) != 0)
        return false;
    decode(&rt->layout, addr, buf, out);
    return out->code != 0;
}

static bool same_frame(const struct raw_frame *a, const struct raw_frame *b)
{
    return a->addr == b->addr && a->code == b->code && a->pos == b->pos &&
           a->tlbc == b->tlbc && a->previous == b->previous && a->owner == b->owner && a->entry == b->entry;
}

static bool push(struct stack_walk *w, const struct raw_frame *r)
{
    if (w->nframes == w->cap) {
        int ncap = w->cap ? w->cap * 2 : 32;
        struct raw_frame *nf = realloc(w->frames, (size_t)ncap * sizeof *nf);
        if (!nf)
            return false;
        w->frames = nf;
        w->cap = ncap;
    }
    w->frames[w->nframes++] = *r;
    return true;
}

/* If r is a frame of the previous walk, unchanged, then everything below
 * it is too: copy it and stop. */
static bool reuse_previous(struct stack_walk *w, const struct raw_frame *r)
{
    int limit = w->nprev < REUSE_SEARCH ? w->nprev : REUSE_SEARCH;
    for (int k = 0; k < limit; k++) {
        if (w->prev[k].addr != r->addr)
            continue;
        if (!same_frame(&w->prev[k], r))
            return false;
        if (k == 0 && w->nframes == 0)
            w->unchanged = true;
        for (int j = k; j < w->nprev && w->nframes < STACK_MAX_FRAMES; j++)
            if (!push(w, &w->prev[j]))
                return true;
        return true;
    }
    return false;
}

/* Brent's cycle detection, one chain step at a time: a chain that comes
 * back to the remembered frame is a loop (garbage), found within twice its
 * length, in constant memory per walk. */
struct cycle_check {
    uint64_t saved;
    uint32_t power, steps;
};

static bool cycle_step(struct cycle_check *cc, uint64_t addr)
{
    if (addr == cc->saved)
        return true;
    if (++cc->steps >= cc->power) {
        cc->saved = addr;
        cc->power = cc->power ? cc->power * 2 : 1;
        cc->steps = 0;
    }
    return false;
}

size_t stackwalk_prefetch_requests(const struct pyrt *rt, struct stack_walk *w, int frames,
                                   struct remote_req *out)
{
    const struct py_layout *L = &rt->layout;
    size_t k = 0;
    w->pre_top_ok = false;
    w->pre[0].ok = w->pre[1].ok = false;
    w->pre[0].addr = w->pre[1].addr = 0;
    if (L->frame_model == FRAME_CFRAME && w->prev_root)
        out[k++] = (struct remote_req){w->prev_root + (uint64_t)L->cframe_current_frame,
                                       &w->pre_top, 8, false};
    for (int j = 0; j < 2 && j < frames && j < w->nprev; j++) {
        w->pre[j].addr = w->prev[j].addr;
        out[k++] = (struct remote_req){w->prev[j].addr, w->pre[j].buf, frame_read_len(L), false};
    }
    return k;
}

bool stackwalk_top_unchanged(const struct pyrt *rt, const struct stack_walk *w)
{
    struct raw_frame r;
    if (!w->nprev || !w->pre[0].ok || w->pre[0].addr != w->prev[0].addr)
        return false;
    decode(&rt->layout, w->pre[0].addr, w->pre[0].buf, &r);
    return same_frame(&r, &w->prev[0]);
}

void stackwalk_prefetch_done(struct stack_walk *w, const struct remote_req *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].buf == &w->pre_top)
            w->pre_top_ok = reqs[i].ok;
        for (int j = 0; j < 2; j++)
            if (reqs[i].buf == w->pre[j].buf)
                w->pre[j].ok = reqs[i].ok;
    }
}

/* 3.11/3.12: the thread state points at a _PyCFrame that holds the frame;
 * use the prefetched value when the _PyCFrame is the same as last time. */
static void resolve_cframes(struct pyrt *rt, struct stack_walk *walks, size_t n,
                            struct remote_req *reqs)
{
    uint64_t *tops = calloc(n, sizeof *tops);
    bool *known = calloc(n, sizeof *known);
    size_t k = 0;
    for (size_t i = 0; tops && known && i < n; i++) {
        uint64_t cf = walks[i].root;
        known[i] = cf && cf == walks[i].prev_root && walks[i].pre_top_ok;
        if (known[i])
            tops[i] = walks[i].pre_top;
        reqs[i] = (struct remote_req){
            cf && !known[i] ? cf + (uint64_t)rt->layout.cframe_current_frame : 0, &tops[i], 8,
            false};
        k += reqs[i].addr != 0;
    }
    if (tops && known && k)
        remote_readv(&rt->mem, reqs, n);
    for (size_t i = 0; i < n; i++) {
        bool ok = tops && known && (known[i] || reqs[i].ok);
        if (walks[i].root && !ok)
            walks[i].partial = true;
        walks[i].root = ok ? tops[i] : 0;
    }
    free(tops);
    free(known);
}

/* One step of a walk on the bytes of frame `addr`; returns the next frame
 * to read, 0 when the walk is over. */
static uint64_t step(const struct py_layout *L, struct stack_walk *w, struct cycle_check *cc,
                     uint64_t addr, const uint8_t *buf, bool ok)
{
    struct raw_frame r;
    if (!ok || w->nframes >= STACK_MAX_FRAMES || cycle_step(cc, addr)) {
        w->partial = true;
        return 0;
    }
    decode(L, addr, buf, &r);
    if (w->prev && reuse_previous(w, &r))
        return 0;
    return push(w, &r) ? r.previous : 0;
}

static const struct frame_prefetch *prefetched(const struct stack_walk *w, uint64_t addr)
{
    for (int j = 0; j < 2; j++)
        if (w->pre[j].ok && w->pre[j].addr == addr)
            return &w->pre[j];
    return NULL;
}

void stackwalk_run(struct pyrt *rt, struct stack_walk *walks, size_t n)
{
    const struct py_layout *L = &rt->layout;
    if (n == 0)
        return;
    struct remote_req *reqs = calloc(n, sizeof *reqs);
    uint64_t *next = calloc(n, sizeof *next);
    uint8_t(*bufs)[FRAME_READ] = calloc(n, FRAME_READ);
    struct cycle_check *cycles = calloc(n, sizeof *cycles);
    for (size_t i = 0; i < n; i++) {
        walks[i].nframes = 0;
        walks[i].partial = false;
        walks[i].unchanged = false;
    }
    if (!reqs || !next || !bufs || !cycles) {
        for (size_t i = 0; i < n; i++)
            walks[i].partial = true;
        goto out;
    }
    if (L->frame_model == FRAME_CFRAME)
        resolve_cframes(rt, walks, n, reqs);
    for (size_t i = 0; i < n; i++)
        next[i] = walks[i].root;
    size_t len = frame_read_len(L);
    for (;;) {
        size_t pending = 0;
        for (size_t i = 0; i < n; i++) {
            const struct frame_prefetch *p;
            /* Frames read ahead cost nothing more: at most two steps. */
            while (next[i] && (p = prefetched(&walks[i], next[i])))
                next[i] = step(L, &walks[i], &cycles[i], next[i], p->buf, true);
            reqs[i] = (struct remote_req){next[i], bufs[i], next[i] ? len : 0, false};
            pending += next[i] != 0;
        }
        if (!pending)
            break;
        remote_readv(&rt->mem, reqs, n);
        for (size_t i = 0; i < n; i++)
            if (next[i])
                next[i] = step(L, &walks[i], &cycles[i], next[i], bufs[i], reqs[i].ok);
    }
out:
    free(cycles);
    free(reqs);
    free(next);
    free(bufs);
}

/* A frame still in its prologue (before the first traceable instruction);
 * bytecode: the copy of the code that r->pos points into (0: unknown). */
static bool incomplete(const struct py_layout *L, const struct code_info *ci,
                       const struct raw_frame *r, uint64_t bytecode)
{
    if (r->owner == L->owner_generator || !bytecode)
        return false;
    return r->pos < bytecode + 2u * (uint64_t)ci->firsttraceable;
}

/* A frame left out (no Python code of its own, or not started yet) passes
 * its eval-call boundary on to the frame kept just inside it. */
static void entry_below(struct py_frame *out, int k, bool entry)
{
    if (entry && k > 0)
        out[k - 1].entry = true;
}

int stackwalk_resolve(struct pyrt *rt, struct pyobj_cache *c, const struct raw_frame *raw, int n,
                      struct py_frame *out, int cap, bool *partial)
{
    const struct py_layout *L = &rt->layout;
    int k = 0;
    for (int i = 0; i < n && k < cap; i++) {
        const struct raw_frame *r = &raw[i];
        if (L->frame_model != FRAME_OBJECTS && L->owner_cstack >= 0 && r->owner >= L->owner_cstack) {
            entry_below(out, k, true);
            continue; /* entry/shim frames hold no Python code */
        }
        struct code_info *ci = pyobj_code(rt, c, r->code);
        if (!ci) {
            /* 3.13's f_executable may be None for frames that run no code. */
            if (L->frame_model == FRAME_CURRENT && r->code) {
                entry_below(out, k, r->entry);
                continue;
            }
            *partial = true;
            break;
        }
        long offset;
        if (L->frame_model == FRAME_OBJECTS) {
            int64_t lasti = (int64_t)r->pos;
            offset = lasti < 0 ? -1 : (long)lasti * L->lasti_scale;
        } else {
            /* 3.14t: a thread runs its own copy of the bytecode. */
            uint64_t base = pyobj_code_bytecode(rt, ci, r->tlbc, r->pos);
            if (incomplete(L, ci, r, base)) {
                entry_below(out, k, r->entry);
                continue;
            }
            offset = !base || r->pos < base ? -1 : (long)((r->pos - base) / 2);
        }
        out[k++] = (struct py_frame){ci, pyobj_code_line(rt, ci, offset), r->entry};
    }
    entry_below(out, k, true); /* the outermost frame kept */
    return k;
}
