#include "record/sample_ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"

void sample_ring_init(struct sample_ring *r, double keep_s)
{
    memset(r, 0, sizeof *r);
    r->keep_s = keep_s;
    /* One CPU reading a second over the kept span, and two to spare for
     * the readings just outside it. */
    r->max_readings = (uint32_t)keep_s + 3;
    addrmap_init(&r->slot_of_tid);
}

void sample_ring_free(struct sample_ring *r)
{
    for (uint32_t i = 0; i < r->count; i++)
        free(r->s[(r->head + i) % r->cap].t);
    free(r->s);
    for (uint32_t i = 0; i < r->nthreads; i++)
        free(r->threads[i].readings);
    free(r->threads);
    addrmap_free(&r->slot_of_tid);
    memset(r, 0, sizeof *r);
}

static void drop_oldest(struct sample_ring *r)
{
    free(r->s[r->head].t);
    r->s[r->head].t = NULL;
    r->head = (r->head + 1) % r->cap;
    r->count--;
}

/* Room for one more sample at the tail: the ring doubles, in order. */
static bool make_room(struct sample_ring *r)
{
    if (r->count < r->cap)
        return true;
    uint32_t cap = r->cap ? r->cap * 2 : 256;
    struct ring_sample *ns = malloc(cap * sizeof *ns);
    if (!ns)
        return false;
    for (uint32_t i = 0; i < r->count; i++)
        ns[i] = r->s[(r->head + i) % r->cap];
    free(r->s);
    r->s = ns;
    r->cap = cap;
    r->head = 0;
    return true;
}

static uint32_t slot_for(struct sample_ring *r, const struct thread_metrics *tm, double t)
{
    uintptr_t k = (uintptr_t)addrmap_get(&r->slot_of_tid, (uint64_t)tm->tid);
    if (k && r->threads[k - 1].used && r->threads[k - 1].tstate == tm->tstate)
        return (uint32_t)(k - 1);
    uint32_t slot = r->nthreads;
    for (uint32_t i = 0; i < r->nthreads; i++)
        if (!r->threads[i].used) {
            slot = i;
            break;
        }
    if (slot == r->nthreads) {
        size_t ncap = grow_for(&r->threads, sizeof *r->threads, r->nthreads, r->capthreads, 16);
        if (!ncap)
            return UINT32_MAX;
        r->capthreads = (uint32_t)ncap;
        r->nthreads++;
        memset(&r->threads[slot], 0, sizeof r->threads[slot]);
    }
    struct ring_thread *rt = &r->threads[slot];
    struct ring_reading *keep = rt->readings;
    memset(rt, 0, sizeof *rt);
    rt->readings = keep;
    rt->used = true;
    rt->tid = tm->tid;
    rt->tstate = tm->tstate;
    rt->first_seen = t;
    snprintf(rt->name, sizeof rt->name, "%s", tm->name);
    /* A TID of 0 (a thread state whose OS thread has not run yet) is no
     * key: such a thread is looked up again next time. */
    if (tm->tid)
        addrmap_put(&r->slot_of_tid, (uint64_t)tm->tid, (void *)(uintptr_t)(slot + 1));
    return slot;
}

void sample_ring_push(struct sample_ring *r, const struct run_metrics *m, const struct sample_obs *s)
{
    while (r->count && r->s[r->head].time < s->time - r->keep_s)
        drop_oldest(r);
    if (!make_room(r)) {
        r->oom = true;
        return;
    }
    struct thread_obs *t = malloc((s->n ? s->n : 1) * sizeof *t);
    if (!t) {
        r->oom = true;
        return;
    }
    uint32_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct thread_metrics *tm = &m->threads[s->t[i].thread];
        if (!tm->tid)
            continue; /* no OS thread yet: nothing to key it by */
        uint32_t slot = slot_for(r, tm, s->time);
        if (slot == UINT32_MAX)
            continue;
        r->threads[slot].last_seen = s->time;
        t[n] = s->t[i];
        /* the task's name lives in the sampler's buffer for this sample
         * only: replays go without it */
        t[n].task = NULL;
        t[n].timers = NULL; /* the sampler's buffers: gone by the replay */
        t[n].ntimers = 0;
        t[n++].thread = slot;
    }
    uint32_t at = (r->head + r->count) % r->cap;
    r->s[at] = (struct ring_sample){s->time, s->gil_valid, s->locked, s->switch_number, t, n};
    r->count++;
}

double sample_ring_newest(const struct sample_ring *r)
{
    return r->count ? r->s[(r->head + r->count - 1) % r->cap].time : 0;
}

static void add_reading(struct sample_ring *r, struct ring_thread *rt, const struct thread_metrics *tm)
{
    if (!tm->cpu_valid)
        return;
    if (!rt->readings) {
        rt->readings = calloc(r->max_readings, sizeof *rt->readings);
        if (!rt->readings)
            return;
    }
    uint32_t last = (rt->next_reading + r->max_readings - 1) % r->max_readings;
    if (rt->nreadings && rt->readings[last].t == tm->t_last)
        return; /* not read again since */
    rt->readings[rt->next_reading] = (struct ring_reading){tm->t_last, tm->cpu_last, tm->ivcs_last};
    rt->next_reading = (rt->next_reading + 1) % r->max_readings;
    if (rt->nreadings < r->max_readings)
        rt->nreadings++;
}

void sample_ring_note_threads(struct sample_ring *r, const struct run_metrics *m)
{
    double newest = sample_ring_newest(r);
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *tm = &m->threads[i];
        uintptr_t k = tm->tid ? (uintptr_t)addrmap_get(&r->slot_of_tid, (uint64_t)tm->tid) : 0;
        if (!k || !r->threads[k - 1].used || r->threads[k - 1].tstate != tm->tstate)
            continue;
        struct ring_thread *rt = &r->threads[k - 1];
        snprintf(rt->name, sizeof rt->name, "%s", tm->name);
        snprintf(rt->python_name, sizeof rt->python_name, "%s", tm->python_name);
        rt->python_name_why = tm->python_name_why;
        rt->exited = tm->exited;
        add_reading(r, rt, tm);
    }
    /* Threads none of whose samples are kept any more give their slot up;
     * the TID index is rebuilt from the slots in use (it cannot delete). */
    double oldest = r->count ? r->s[r->head].time : newest;
    bool freed = false;
    for (uint32_t i = 0; i < r->nthreads; i++) {
        struct ring_thread *rt = &r->threads[i];
        if (rt->used && (rt->last_seen < oldest || !r->count)) {
            rt->used = false;
            rt->nreadings = rt->next_reading = 0;
            freed = true;
        }
    }
    if (!freed)
        return;
    addrmap_clear(&r->slot_of_tid);
    for (uint32_t i = 0; i < r->nthreads; i++)
        if (r->threads[i].used && r->threads[i].tid)
            addrmap_put(&r->slot_of_tid, (uint64_t)r->threads[i].tid, (void *)(uintptr_t)(i + 1));
}

/* The thread's CPU counters at the edges of [from, to] (absolute times):
 * the last reading at or before `from` (else the first after it) and the
 * last one at or before `to`. */
static void replay_cpu(const struct sample_ring *r, const struct ring_thread *rt, double from,
                       double to, struct thread_metrics *tm)
{
    const struct ring_reading *a = NULL, *b = NULL;
    for (uint32_t i = 0; i < rt->nreadings; i++) {
        const struct ring_reading *x =
            &rt->readings[(rt->next_reading + r->max_readings - rt->nreadings + i) %
                          r->max_readings];
        if (x->t > to + 0.5)
            break;
        if (!a || x->t <= from)
            a = x;
        b = x;
    }
    if (!a || !b || b->t <= a->t)
        return;
    tm->cpu_valid = true;
    tm->cpu_first = a->cpu;
    tm->cpu_last = b->cpu;
    tm->ivcs_first = a->ivcs;
    tm->ivcs_last = b->ivcs;
    tm->t_first = a->t;
    tm->t_last = b->t;
}

uint64_t sample_ring_replay(struct sample_ring *r, double from, double to,
                            const struct run_metrics *live, struct run_metrics *out)
{
    out->requested_rate_hz = live->requested_rate_hz;
    out->sample_period_s = live->sample_period_s;
    out->stall_ms = live->stall_ms;
    out->interval_us = live->interval_us;
    out->free_threaded = live->free_threaded;
    out->handoffs_unmeasured = live->handoffs_unmeasured;
    out->loop_cls.uvloop = live->loop_cls.uvloop;
    memcpy(out->process_name, live->process_name, sizeof out->process_name);
    memcpy(out->bpf_note, live->bpf_note, sizeof out->bpf_note);
    memcpy(out->loop_bpf_note, live->loop_bpf_note, sizeof out->loop_bpf_note);
    for (uint32_t i = 0; i < r->nthreads; i++)
        r->threads[i].replay_idx = UINT32_MAX;
    struct thread_obs *obs = NULL;
    uint32_t capobs = 0;
    uint64_t replayed = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        const struct ring_sample *rs = &r->s[(r->head + i) % r->cap];
        if (rs->time < from || rs->time > to)
            continue;
        if (rs->n > capobs) {
            struct thread_obs *no = realloc(obs, rs->n * sizeof *no);
            if (!no)
                break;
            obs = no;
            capobs = rs->n;
        }
        uint32_t n = 0;
        for (uint32_t k = 0; k < rs->n; k++) {
            struct ring_thread *rt = &r->threads[rs->t[k].thread];
            if (rt->replay_idx == UINT32_MAX) {
                rt->replay_idx = metrics_add_thread(out, rt->tid, rt->name, rt->tstate);
                if (rt->replay_idx == UINT32_MAX)
                    continue;
                struct thread_metrics *tm = &out->threads[rt->replay_idx];
                snprintf(tm->python_name, sizeof tm->python_name, "%s", rt->python_name);
                tm->python_name_why = rt->python_name_why;
                tm->exited = rt->exited && rt->last_seen <= to;
                out->py_created += rt->first_seen > from + out->sample_period_s * 2;
                out->py_exited += tm->exited;
                replay_cpu(r, rt, r->origin + from, r->origin + to, tm);
            }
            obs[n] = rs->t[k];
            obs[n++].thread = rt->replay_idx;
        }
        metrics_thread_counts(out, n, n);
        struct sample_obs so = {rs->time - from, rs->gil_valid, rs->locked, rs->switch_number, obs, n};
        metrics_observe(out, &so);
        replayed++;
    }
    free(obs);
    out->os_created = out->py_created;
    out->os_exited = out->py_exited;
    out->duration_s = to - from;
    out->samples_requested = (uint64_t)(out->duration_s * out->requested_rate_hz + 0.5);
    out->missed = out->samples_requested > replayed ? out->samples_requested - replayed : 0;
    return replayed;
}
