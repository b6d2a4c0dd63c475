#include "sample/native_sample.h"

#include <stdlib.h>
#include <string.h>

#include "native/merge.h"
#include "python/snapshot.h"
#include "util/grow.h"
#include "util/quantiles.h"

struct reread {
    struct pyrt *rt;
    struct pyobj_cache *c;
    uint64_t tstate;
    struct py_frame *frames;
    int n;
};

static void reread_python(void *arg)
{
    struct reread *r = arg;
    bool partial;
    r->n = snapshot_thread_frames(r->rt, r->c, r->tstate, &r->frames, &partial);
}

uint32_t native_sample_thread(struct native_sampling *n, struct pyrt *rt, struct pyobj_cache *c,
                              struct stack_table *t, pid_t tid, uint64_t tstate,
                              enum block_kind kind, uint32_t fallback)
{
    struct native_stack st;
    struct reread rr = {rt, c, tstate, NULL, 0};
    struct gp_error err = {0};
    int r = native_unwind(n->ns, tid, false, reread_python, &rr, &st, &err);
    if (r != GP_OK) {
        n->failed++;
        if (r == GP_ERR_PERMISSION && !n->fatal) {
            n->fatal = r;
            n->err = err;
        }
        free(rr.frames);
        return fallback;
    }
    n->this_sample += st.pause_ns;
    n->total += st.pause_ns;
    if (n->n == n->cap) {
        size_t cap = grow_for(&n->pauses, sizeof *n->pauses, n->n, n->cap, 1024);
        if (cap && grow_for(&n->stopped, sizeof *n->stopped, n->n, n->cap, 1024) == cap)
            n->cap = cap;
    }
    if (n->n < n->cap) {
        n->pauses[n->n] = st.pause_ns;
        n->stopped[n->n++] = st.stopped_ns;
    }
    uint32_t id = fallback;
    struct mixed_stack ms;
    if (rr.n >= 0 && native_merge(n->ns, &st, rr.frames, rr.n, &ms)) {
        if (ms.n > n->bufcap && resize_array(&n->buf, sizeof *n->buf, (size_t)ms.n))
            n->bufcap = ms.n;
        if (ms.n <= n->bufcap)
            id = stack_table_intern(t, n->buf, mixed_as_py_frames(&ms, n->buf, n->bufcap));
        mixed_stack_free(&ms);
    }
    enum native_state ns = native_state_of(n->ns, &st);
    if (ns != NSTATE_UNKNOWN) {
        n->compared++;
        n->disagree += !native_state_agrees(ns, kind);
    }
    free(rr.frames);
    return id;
}

void native_sample_done(struct native_sampling *n)
{
    if (n->this_sample > n->sample_max)
        n->sample_max = n->this_sample;
    n->this_sample = 0;
}

/* p50/p99/max in µs of n durations in ns. */
static void quantiles(const uint64_t *ns, size_t n, double *p50, double *p99, double *max)
{
    double *us = malloc(n * sizeof *us);
    if (!us)
        return;
    for (size_t i = 0; i < n; i++)
        us[i] = (double)ns[i] / 1e3;
    struct quantiles q = quantiles_of(us, n);
    *p50 = q.p50;
    *p99 = q.p99;
    *max = q.max;
    free(us);
}

void native_sampling_stats(const struct native_sampling *n, struct native_pause_stats *out)
{
    memset(out, 0, sizeof *out);
    out->unwinds = n->n;
    out->failed = n->failed;
    out->disagree = n->disagree;
    out->compared = n->compared;
    out->total_ms = (double)n->total / 1e6;
    out->sample_max_us = (double)n->sample_max / 1e3;
    if (!n->n)
        return;
    quantiles(n->pauses, n->n, &out->p50_us, &out->p99_us, &out->max_us);
    quantiles(n->stopped, n->n, &out->stopped_p50_us, &out->stopped_p99_us, &out->stopped_max_us);
}

void native_sampling_free(struct native_sampling *n)
{
    free(n->pauses);
    free(n->stopped);
    free(n->buf);
    native_close(n->ns);
    memset(n, 0, sizeof *n);
}
