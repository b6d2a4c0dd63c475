#include "python/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/addrmap.h"

/* How many times a thread list that changed under us is read again. */
#define SNAP_RETRIES 8
#define TSTATE_READ PY_READ_TSTATE

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

static void read_stacks(struct pyrt *rt, struct pyobj_cache *c, struct snapshot *s,
                        const uint64_t *roots)
{
    struct stack_walk *walks = calloc(s->nthreads, sizeof *walks);
    if (!walks)
        return;
    for (size_t i = 0; i < s->nthreads; i++)
        walks[i].root = roots[i];
    stackwalk_run(rt, walks, s->nthreads);
    for (size_t i = 0; i < s->nthreads; i++) {
        struct py_thread *t = &s->threads[i];
        t->stack_partial = walks[i].partial;
        t->frames = calloc(walks[i].nframes ? (size_t)walks[i].nframes : 1, sizeof *t->frames);
        if (t->frames)
            t->nframes = stackwalk_resolve(rt, c, walks[i].frames, walks[i].nframes, t->frames,
                                           walks[i].nframes, &t->stack_partial);
        free(walks[i].frames);
    }
    free(walks);
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
static void resolve_tids(struct pyrt *rt, struct snapshot *s, const struct task_ids *tasks)
{
    if (s->nthreads == 0)
        return;
    struct task_ids ids = *tasks;
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
/* A pointer the walk followed: where it was read, and what it said. */
struct followed {
    uint64_t at, value;
};

static bool note_followed(struct followed **f, size_t *n, size_t *cap, uint64_t at, uint64_t value)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        struct followed *nf = realloc(*f, nc * sizeof *nf);
        if (!nf)
            return false;
        *f = nf;
        *cap = nc;
    }
    (*f)[(*n)++] = (struct followed){at, value};
    return true;
}

/* Whether every list pointer the walk followed still says the same: a
 * thread unlinked while the walk was on it leaves its predecessor's
 * `next` changed. Without this check a walk that went through a freed
 * thread state could end early at a NULL and look whole (a churning dump
 * listed 1 of its 3 long-lived threads, not marked partial). */
static bool still_linked(struct pyrt *rt, const struct followed *f, size_t n)
{
    struct remote_req *reqs = calloc(n ? n : 1, sizeof *reqs);
    uint64_t *now = calloc(n ? n : 1, sizeof *now);
    bool same = reqs && now;
    for (size_t i = 0; same && i < n; i++)
        reqs[i] = (struct remote_req){f[i].at, &now[i], 8, false};
    if (same)
        remote_readv(&rt->mem, reqs, n);
    for (size_t i = 0; same && i < n; i++)
        same = reqs[i].ok && now[i] == f[i].value;
    free(reqs);
    free(now);
    return same;
}

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
    struct followed *links = NULL;
    size_t nlinks = 0, caplinks = 0;
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
            !remote_u64(&rt->mem, interp + (uint64_t)L->interp_next, &next_interp) ||
            !note_followed(&links, &nlinks, &caplinks, interp + (uint64_t)L->interp_threads_head,
                           ts_addr)) {
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
            roots[s->nthreads - 1] = u64_at(ts, stackwalk_root_offset(L));
            ts_addr = u64_at(ts, L->ts_next);
            if (!note_followed(&links, &nlinks, &caplinks, t->tstate + (uint64_t)L->ts_next,
                               ts_addr)) {
                torn = true;
                break;
            }
        }
        interp = next_interp;
    }
    addrmap_free(&seen_ts);
    addrmap_free(&seen_interp);
    if (!torn && !still_linked(rt, links, nlinks))
        torn = true;
    free(links);
    if (stacks && !torn && s->nthreads)
        read_stacks(rt, c, s, roots);
    free(roots);
    return !torn;
}

int snapshot_take(struct pyrt *rt, struct pyobj_cache *cache, bool stacks, struct snapshot *s,
                  struct gp_error *err)
{
    memset(s, 0, sizeof *s);
    /* The tasks are listed before the thread states: a thread that exits
     * in between still has its TID (listing them after, it lost it, and a
     * sampler took it for a new thread without one: churn overcounted).
     * One started in between has none yet, as if it had not run. */
    struct task_ids tasks;
    task_ids_read(rt, &tasks);
    bool whole = false;
    /* Of the torn attempts, the one that got furthest down the lists. */
    struct snapshot best = {0};
    for (int attempt = 0; attempt < SNAP_RETRIES; attempt++) {
        gil_read(rt, &s->gil);
        whole = read_threads(rt, cache, stacks, s);
        if (whole)
            break;
        if (s->nthreads > best.nthreads) {
            free_threads(&best);
            best.threads = s->threads;
            best.nthreads = s->nthreads;
            best.gil = s->gil;
            s->threads = NULL;
            s->nthreads = 0;
        } else {
            free_threads(s);
        }
    }
    if (whole) {
        free_threads(&best);
    } else {
        s->threads = best.threads;
        s->nthreads = best.nthreads;
        s->gil = best.gil;
        int r = proc_exists(rt->pid);
        if (r < 0 || rt->mem.last_errno == ESRCH) {
            task_ids_free(&tasks);
            snapshot_free(s);
            gp_error_set(err, GP_ERR_EXITED,
                         "process %d exited while gilprobe was reading its threads; nothing to "
                         "report",
                         rt->pid);
            return err->code;
        }
        set_partial(s, "the thread list changed while it was read");
    }
    resolve_tids(rt, s, &tasks);
    task_ids_free(&tasks);
    for (size_t i = 0; i < s->nthreads; i++)
        s->threads[i].holds_gil = s->gil.holder && s->threads[i].tstate == s->gil.holder;
    return GP_OK;
}

void snapshot_free(struct snapshot *s)
{
    free_threads(s);
}

int snapshot_thread_frames(struct pyrt *rt, struct pyobj_cache *c, uint64_t tstate,
                           struct py_frame **frames, bool *partial)
{
    struct stack_walk w = {0};
    *frames = NULL;
    *partial = false;
    if (!remote_u64(&rt->mem, tstate + (uint64_t)stackwalk_root_offset(&rt->layout), &w.root))
        *partial = true;
    if (w.root)
        stackwalk_run(rt, &w, 1);
    *partial |= w.partial;
    *frames = calloc(w.nframes ? (size_t)w.nframes : 1, sizeof **frames);
    int n = *frames ? stackwalk_resolve(rt, c, w.frames, w.nframes, *frames, w.nframes, partial)
                    : -1;
    free(w.frames);
    return n;
}
