#include <stdlib.h>
#include <string.h>

#include "sample/dump.h"

struct reread {
    struct pyrt *rt;
    struct pyobj_cache *cache;
    struct py_thread *t;
};

/* Runs while the thread is stopped: its Python stack as of its native one. */
static void reread_python(void *arg)
{
    struct reread *r = arg;
    struct py_frame *frames;
    bool partial;
    int n = snapshot_thread_frames(r->rt, r->cache, r->t->tstate, &frames, &partial);
    if (n < 0)
        return;
    free(r->t->frames);
    r->t->frames = frames;
    r->t->nframes = n;
    r->t->stack_partial = partial;
}

/* GP_OK, also when this thread could not be unwound (dn says why); an
 * exit code only for what stops the whole dump (no permission). */
static int unwind_one(struct dump *d, pid_t tid, bool already_stopped, struct reread *rr,
                      struct dump_native *dn, struct gp_error *err)
{
    struct gp_error local = {0};
    dn->stack = calloc(1, sizeof *dn->stack);
    if (!dn->stack) {
        snprintf(dn->why, sizeof dn->why, "out of memory");
        return GP_OK;
    }
    int r = native_unwind(d->ns, tid, already_stopped, rr ? reread_python : NULL, rr, dn->stack,
                          &local);
    if (r == GP_ERR_PERMISSION) {
        *err = local;
        return r;
    }
    if (r != GP_OK) {
        snprintf(dn->why, sizeof dn->why, "%s", local.msg);
        return GP_OK;
    }
    d->native_stops += !already_stopped;
    d->native_pause_total_ns += dn->stack->pause_ns;
    if (dn->stack->pause_ns > d->native_pause_max_ns)
        d->native_pause_max_ns = dn->stack->pause_ns;
    const struct py_frame *py = rr ? rr->t->frames : NULL;
    int npy = rr ? rr->t->nframes : 0;
    if (!native_merge(d->ns, dn->stack, py, npy, &dn->mixed)) {
        snprintf(dn->why, sizeof dn->why, "out of memory");
        return GP_OK;
    }
    dn->state = native_state_of(d->ns, dn->stack);
    dn->ok = true;
    return GP_OK;
}

int dump_native_collect(struct dump *d, struct pyrt *rt, struct pyobj_cache *cache,
                        const struct task_info *tasks, size_t ntasks, bool already_stopped,
                        struct gp_error *err)
{
    int r = native_open(d->pid, true, &d->ns, err);
    if (r != GP_OK)
        return r;
    struct snapshot *snap = &d->snap;
    d->py_native = calloc(snap->nthreads ? snap->nthreads : 1, sizeof *d->py_native);
    d->native_only = calloc(ntasks ? ntasks : 1, sizeof *d->native_only);
    if (!d->py_native || !d->native_only) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory for --native");
        return err->code;
    }
    for (size_t i = 0; i < snap->nthreads; i++) {
        struct dump_native *dn = &d->py_native[i];
        if (!snap->threads[i].tid) {
            snprintf(dn->why, sizeof dn->why, "its kernel thread id is unknown");
            continue;
        }
        struct reread rr = {rt, cache, &snap->threads[i]};
        if ((r = unwind_one(d, snap->threads[i].tid, already_stopped, &rr, dn, err)) != GP_OK)
            return r;
    }
    for (size_t k = 0; k < ntasks; k++) {
        bool python = false;
        for (size_t i = 0; i < snap->nthreads && !python; i++)
            python = snap->threads[i].tid == tasks[k].tid;
        if (python || !tasks[k].valid)
            continue;
        struct dump_native_thread *nt = &d->native_only[d->nnative_only++];
        nt->task = tasks[k];
        classify_task(&nt->task, snap->gil.addr, snap->gil.size, &nt->block);
        if ((r = unwind_one(d, tasks[k].tid, already_stopped, NULL, &nt->native, err)) != GP_OK)
            return r;
        nt->native.agrees = native_state_agrees(nt->native.state, nt->block.kind);
    }
    return GP_OK;
}

static void free_one(struct dump_native *dn)
{
    free(dn->stack);
    mixed_stack_free(&dn->mixed);
}

void dump_native_free(struct dump *d)
{
    for (size_t i = 0; d->py_native && i < d->snap.nthreads; i++)
        free_one(&d->py_native[i]);
    for (size_t i = 0; i < d->nnative_only; i++)
        free_one(&d->native_only[i].native);
    free(d->py_native);
    free(d->native_only);
    native_close(d->ns);
}
