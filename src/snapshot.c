#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrmap.h"

/* How many times a thread list that changed under us is read again. */
#define SNAP_RETRIES 3
#define TSTATE_READ 512
#define FRAME_READ 128

static void set_partial(struct snapshot *s, const char *why)
{
    if (!s->partial)
        snprintf(s->partial_reason, sizeof s->partial_reason, "%s", why);
    s->partial = true;
}

static uint64_t u64_at(const uint8_t *buf, int32_t off)
{
    uint64_t v = 0;
    if (off >= 0)
        memcpy(&v, buf + off, 8);
    return v;
}

static uint64_t main_interpreter(struct pyrt *rt)
{
    uint64_t interp = 0;
    remote_u64(&rt->mem, rt->runtime + (uint64_t)rt->layout.rt_interpreters_main, &interp);
    return interp;
}

static void read_gil(struct pyrt *rt, struct gil_state *g)
{
    const struct py_layout *L = &rt->layout;
    memset(g, 0, sizeof *g);
    if (L->rt_gil >= 0) {
        g->addr = rt->runtime + (uint64_t)L->rt_gil;
    } else {
        uint64_t interp = main_interpreter(rt);
        if (!interp || !remote_u64(&rt->mem, interp + (uint64_t)L->interp_ceval_gil, &g->addr))
            g->addr = 0;
    }
    uint8_t buf[256];
    if (!g->addr || L->gil_size > (int32_t)sizeof buf ||
        remote_read(&rt->mem, g->addr, buf, (size_t)L->gil_size) != 0) {
        g->addr = 0;
        return;
    }
    g->size = (uint32_t)L->gil_size;
    int32_t locked;
    memcpy(&locked, buf + L->gil_locked, 4);
    g->locked = locked;
    g->last_holder = u64_at(buf, L->gil_last_holder);
    g->switch_number = u64_at(buf, L->gil_switch_number);
    g->interval_us = u64_at(buf, L->gil_interval);
    if (L->rt_tstate_current >= 0) {
        /* <=3.11: the runtime names the thread state that holds the GIL;
         * between take_gil and setting it, fall back to last_holder. */
        uint64_t cur = 0;
        remote_u64(&rt->mem, rt->runtime + (uint64_t)L->rt_tstate_current, &cur);
        g->holder = cur ? cur : (locked == 1 ? g->last_holder : 0);
    } else {
        g->holder = locked == 1 ? g->last_holder : 0;
    }
}

/* Offset (in the unit its line table wants) of the instruction a frame is at. */
static long frame_offset(const struct pyrt *rt, uint64_t code_addr, uint64_t instr)
{
    const struct py_layout *L = &rt->layout;
    uint64_t base = code_addr + (uint64_t)L->code_code_adaptive;
    if (instr < base)
        return -1;
    return (long)((instr - base) / 2);
}

static bool frame_is_incomplete(const struct pyrt *rt, const struct code_info *ci,
                                uint64_t code_addr, uint64_t instr, int owner)
{
    const struct py_layout *L = &rt->layout;
    if (owner == L->owner_generator)
        return false;
    return instr < code_addr + (uint64_t)L->code_code_adaptive + 2u * (uint64_t)ci->firsttraceable;
}

static bool push_frame(struct py_thread *t, int *cap, const struct code_info *ci, int line)
{
    if (t->nframes == *cap) {
        int ncap = *cap ? *cap * 2 : 16;
        struct py_frame *nf = realloc(t->frames, (size_t)ncap * sizeof *nf);
        if (!nf)
            return false;
        t->frames = nf;
        *cap = ncap;
    }
    t->frames[t->nframes++] = (struct py_frame){ci, line};
    return true;
}

/* One thread's stack walk in progress. */
struct walk {
    struct py_thread *t;
    uint64_t frame; /* next frame to read; 0 when done */
    int cap;
    uint8_t buf[FRAME_READ];
};

/* 3.8-3.10 PyFrameObject: record it, return the caller (f_back). */
static uint64_t visit_frame_object(struct pyrt *rt, struct pyobj_cache *c, struct walk *w)
{
    const struct py_layout *L = &rt->layout;
    int32_t lasti;
    memcpy(&lasti, w->buf + L->frameobj_lasti, 4);
    const struct code_info *ci = pyobj_code(rt, c, u64_at(w->buf, L->frameobj_code));
    if (!ci) {
        w->t->stack_partial = true;
        return 0;
    }
    long off = lasti < 0 ? -1 : (long)lasti * L->lasti_scale;
    if (!push_frame(w->t, &w->cap, ci, pyobj_code_line(rt, ci, off)))
        return 0;
    return u64_at(w->buf, L->frameobj_back);
}

/* 3.11+ _PyInterpreterFrame: record it, return `previous`. */
static uint64_t visit_interpreter_frame(struct pyrt *rt, struct pyobj_cache *c, struct walk *w)
{
    const struct py_layout *L = &rt->layout;
    uint64_t previous = u64_at(w->buf, L->iframe_previous);
    int owner = w->buf[L->iframe_owner];
    /* Entry/shim frames (FRAME_OWNED_BY_CSTACK and later kinds) hold no
     * Python code; 3.14 tags the code reference's low bits. */
    if (L->owner_cstack >= 0 && owner >= L->owner_cstack)
        return previous;
    uint64_t code = u64_at(w->buf, L->iframe_code) & ~(uint64_t)3;
    uint64_t instr = u64_at(w->buf, L->iframe_instr);
    const struct code_info *ci = pyobj_code(rt, c, code);
    if (!ci) {
        /* 3.13's f_executable may be None for frames that run no code. */
        if (L->frame_model == FRAME_CURRENT && code)
            return previous;
        w->t->stack_partial = true;
        return 0;
    }
    if (!frame_is_incomplete(rt, ci, code, instr, owner) &&
        !push_frame(w->t, &w->cap, ci, pyobj_code_line(rt, ci, frame_offset(rt, code, instr))))
        return 0;
    return previous;
}

static size_t frame_read_len(const struct py_layout *L)
{
    return L->frame_model == FRAME_OBJECTS ? (size_t)L->frameobj_lasti + 4
                                           : (size_t)L->iframe_owner + 1;
}

/* 3.11/3.12: the tstate points at a _PyCFrame that holds the top frame. */
static void resolve_cframes(struct pyrt *rt, struct walk *walks, size_t n,
                            struct remote_req *reqs)
{
    uint64_t *tops = calloc(n, sizeof *tops);
    for (size_t i = 0; tops && i < n; i++) {
        uint64_t cf = walks[i].frame;
        reqs[i] = (struct remote_req){
            cf ? cf + (uint64_t)rt->layout.cframe_current_frame : 0, &tops[i], 8, false};
    }
    if (tops)
        remote_readv(&rt->mem, reqs, n);
    for (size_t i = 0; i < n; i++) {
        bool ok = tops && reqs[i].ok;
        if (walks[i].frame && !ok)
            walks[i].t->stack_partial = true;
        walks[i].frame = ok ? tops[i] : 0;
    }
    free(tops);
}

/* Walks every thread's stack in lockstep: each round reads the next frame
 * of all threads in one batch, so a dump costs about as many syscalls as
 * the deepest stack has frames, not as all stacks together. */
static void read_stacks(struct pyrt *rt, struct pyobj_cache *c, struct walk *walks, size_t n)
{
    const struct py_layout *L = &rt->layout;
    struct remote_req *reqs = calloc(n, sizeof *reqs);
    struct addrmap *seen = calloc(n, sizeof *seen);
    if (!reqs || !seen) {
        free(reqs);
        free(seen);
        return;
    }
    if (L->frame_model == FRAME_CFRAME)
        resolve_cframes(rt, walks, n, reqs);
    size_t len = frame_read_len(L);
    for (int depth = 0; depth <= SNAP_MAX_FRAMES; depth++) {
        size_t pending = 0;
        for (size_t i = 0; i < n; i++) {
            struct walk *w = &walks[i];
            if (w->frame && (depth == SNAP_MAX_FRAMES || !addrmap_add_new(&seen[i], w->frame))) {
                w->t->stack_partial = true; /* too deep, or a cycle: garbage */
                w->frame = 0;
            }
            reqs[i] = (struct remote_req){w->frame, w->buf, w->frame ? len : 0, false};
            pending += w->frame != 0;
        }
        if (!pending)
            break;
        remote_readv(&rt->mem, reqs, n);
        for (size_t i = 0; i < n; i++) {
            struct walk *w = &walks[i];
            if (!w->frame)
                continue;
            if (!reqs[i].ok) {
                w->t->stack_partial = true;
                w->frame = 0;
                continue;
            }
            w->frame = L->frame_model == FRAME_OBJECTS ? visit_frame_object(rt, c, w)
                                                       : visit_interpreter_frame(rt, c, w);
        }
    }
    for (size_t i = 0; i < n; i++)
        addrmap_free(&seen[i]);
    free(seen);
    free(reqs);
}

/* Where a thread's innermost frame (or, for 3.11/3.12, its _PyCFrame) is. */
static uint64_t stack_root(const struct py_layout *L, const uint8_t *ts)
{
    switch (L->frame_model) {
    case FRAME_OBJECTS: return u64_at(ts, L->ts_frame);
    case FRAME_CFRAME: return u64_at(ts, L->ts_cframe);
    default: return u64_at(ts, L->ts_current_frame);
    }
}

static size_t tstate_read_len(const struct py_layout *L)
{
    int32_t offs[] = {L->ts_next, L->ts_interp, L->ts_thread_id, L->ts_frame,
                      L->ts_native_thread_id, L->ts_cframe, L->ts_current_frame};
    int32_t end = 0;
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++)
        if (offs[i] > end)
            end = offs[i];
    return (size_t)end + 8;
}

/* The process's threads as (our TID, its namespace's TID). */
struct task_ids {
    pid_t *host, *inner;
    size_t n;
};

static void task_ids_read(struct pyrt *rt, struct task_ids *ids)
{
    memset(ids, 0, sizeof *ids);
    if (proc_list_tasks(rt->pid, &ids->host, &ids->n) != 0)
        return;
    ids->inner = calloc(ids->n ? ids->n : 1, sizeof *ids->inner);
    for (size_t k = 0; ids->inner && k < ids->n; k++)
        ids->inner[k] = rt->ns_pid == rt->pid ? ids->host[k] : proc_ns_tid(rt->pid, ids->host[k]);
    if (!ids->inner)
        ids->n = 0;
}

static void task_ids_free(struct task_ids *ids)
{
    free(ids->host);
    free(ids->inner);
}

static pid_t host_tid_of(const struct task_ids *ids, pid_t inner)
{
    for (size_t k = 0; k < ids->n && inner > 0; k++)
        if (ids->inner[k] == inner)
            return ids->host[k];
    return 0;
}

/* Reads the int at pthread+off for every thread; true when each one is a
 * distinct TID of a live task (so `off` really is struct pthread.tid). */
static bool read_pthread_tids(struct pyrt *rt, struct snapshot *s, int off,
                              const struct task_ids *ids, int32_t *out)
{
    struct remote_req *reqs = calloc(s->nthreads, sizeof *reqs);
    if (!reqs)
        return false;
    for (size_t i = 0; i < s->nthreads; i++) {
        out[i] = 0;
        uint64_t p = s->threads[i].pthread;
        reqs[i] = (struct remote_req){p ? p + (uint64_t)off : 0, &out[i], 4, false};
    }
    remote_readv(&rt->mem, reqs, s->nthreads);
    bool valid = true;
    for (size_t i = 0; i < s->nthreads && valid; i++) {
        valid = reqs[i].ok && host_tid_of(ids, out[i]) != 0;
        for (size_t j = 0; j < i && valid; j++)
            valid = out[j] != out[i];
    }
    free(reqs);
    return valid;
}

/* Kernel TIDs: native_thread_id (3.11+) or struct pthread's tid field
 * (<=3.10), both in the target's PID namespace, mapped to ours. */
static void resolve_tids(struct pyrt *rt, struct snapshot *s)
{
    if (s->nthreads == 0)
        return;
    struct task_ids ids;
    task_ids_read(rt, &ids);
    if (rt->layout.ts_native_thread_id < 0) {
        int32_t *tids = calloc(s->nthreads, sizeof *tids);
        if (tids && rt->pthread_tid_off >= 0) {
            read_pthread_tids(rt, s, rt->pthread_tid_off, &ids, tids);
        } else {
            for (int k = 0; tids && k < rt->pthread_tid_ncands; k++) {
                if (read_pthread_tids(rt, s, rt->pthread_tid_cands[k], &ids, tids)) {
                    rt->pthread_tid_off = rt->pthread_tid_cands[k];
                    break;
                }
            }
        }
        for (size_t i = 0; tids && i < s->nthreads; i++)
            s->threads[i].tid = rt->pthread_tid_off >= 0 ? tids[i] : 0;
        free(tids);
    }
    for (size_t i = 0; i < s->nthreads; i++)
        s->threads[i].tid = host_tid_of(&ids, s->threads[i].tid);
    task_ids_free(&ids);
}

static void free_threads(struct snapshot *s)
{
    for (size_t i = 0; i < s->nthreads; i++)
        free(s->threads[i].frames);
    free(s->threads);
    s->threads = NULL;
    s->nthreads = 0;
}

/* One pass over interpreters and their thread lists. false when the lists
 * looked torn (worth another try). */
static bool read_threads(struct pyrt *rt, struct pyobj_cache *c, bool stacks, struct snapshot *s)
{
    const struct py_layout *L = &rt->layout;
    struct addrmap seen_ts, seen_interp;
    uint64_t *roots = NULL;
    addrmap_init(&seen_ts);
    addrmap_init(&seen_interp);
    size_t cap = 0;
    bool torn = false;
    uint64_t interp = 0;
    remote_u64(&rt->mem, rt->runtime + (uint64_t)L->rt_interpreters_head, &interp);
    if (!interp)
        torn = true;
    for (int ni = 0; interp && ni < SNAP_MAX_INTERPRETERS && !torn; ni++) {
        if (!addrmap_add_new(&seen_interp, interp)) {
            torn = true;
            break;
        }
        uint64_t ts_addr = 0, next_interp = 0;
        if (!remote_u64(&rt->mem, interp + (uint64_t)L->interp_threads_head, &ts_addr) ||
            !remote_u64(&rt->mem, interp + (uint64_t)L->interp_next, &next_interp)) {
            torn = true;
            break;
        }
        while (ts_addr) {
            if (s->nthreads >= SNAP_MAX_THREADS) {
                set_partial(s, "more threads than gilprobe reads");
                break;
            }
            uint8_t ts[TSTATE_READ];
            if (!addrmap_add_new(&seen_ts, ts_addr) ||
                remote_read(&rt->mem, ts_addr, ts, tstate_read_len(L)) != 0 ||
                u64_at(ts, L->ts_interp) != interp) {
                torn = true;
                break;
            }
            if (s->nthreads == cap) {
                cap = cap ? cap * 2 : 16;
                struct py_thread *nt = realloc(s->threads, cap * sizeof *nt);
                uint64_t *nr = nt ? realloc(roots, cap * sizeof *nr) : NULL;
                if (nt)
                    s->threads = nt;
                if (!nr) {
                    torn = true;
                    break;
                }
                roots = nr;
            }
            struct py_thread *t = &s->threads[s->nthreads++];
            memset(t, 0, sizeof *t);
            t->tstate = ts_addr;
            t->interp = interp;
            t->pthread = u64_at(ts, L->ts_thread_id);
            if (L->ts_native_thread_id >= 0) {
                uint64_t native = u64_at(ts, L->ts_native_thread_id);
                t->tid = native < (1u << 30) ? (pid_t)native : 0;
            }
            roots[s->nthreads - 1] = stack_root(L, ts);
            ts_addr = u64_at(ts, L->ts_next);
        }
        interp = next_interp;
    }
    addrmap_free(&seen_ts);
    addrmap_free(&seen_interp);
    if (stacks && !torn && s->nthreads) {
        struct walk *walks = calloc(s->nthreads, sizeof *walks);
        for (size_t i = 0; walks && i < s->nthreads; i++)
            walks[i] = (struct walk){.t = &s->threads[i], .frame = roots[i]};
        if (walks)
            read_stacks(rt, c, walks, s->nthreads);
        free(walks);
    }
    free(roots);
    return !torn;
}

int snapshot_take(struct pyrt *rt, struct pyobj_cache *cache, bool stacks, struct snapshot *s,
                  struct gp_error *err)
{
    memset(s, 0, sizeof *s);
    bool whole = false;
    for (int attempt = 0; attempt < SNAP_RETRIES && !whole; attempt++) {
        if (attempt)
            free_threads(s);
        read_gil(rt, &s->gil);
        whole = read_threads(rt, cache, stacks, s);
    }
    if (!whole) {
        int r = proc_exists(rt->pid);
        if (r < 0 || rt->mem.last_errno == ESRCH) {
            snapshot_free(s);
            gp_error_set(err, GP_ERR_EXITED,
                         "process %d exited while gilprobe was reading its threads; nothing to "
                         "report",
                         rt->pid);
            return err->code;
        }
        set_partial(s, "the thread list changed while it was read");
    }
    resolve_tids(rt, s);
    for (size_t i = 0; i < s->nthreads; i++)
        s->threads[i].holds_gil = s->gil.holder && s->threads[i].tstate == s->gil.holder;
    return GP_OK;
}

void snapshot_free(struct snapshot *s)
{
    free_threads(s);
}
