#include "native/merge.h"

#include <stdlib.h>

/* Python frames form groups, one per _PyEval_EvalFrameDefault call: up to
 * 3.10 every frame is its own call; 3.11+ runs calls of Python functions
 * inline, so a group ends at its entry frame (is_entry on 3.11, the frame
 * above a C-stack shim on 3.12+). Eval frames on the native stack and
 * groups both come innermost first and pair up in order. */
bool native_merge(struct native_session *s, const struct native_stack *ns,
                  const struct py_frame *py, int npy, struct mixed_stack *out)
{
    out->n = 0;
    out->approximate = false;
    out->f = calloc((size_t)ns->n + (size_t)npy + 1, sizeof *out->f);
    if (!out->f)
        return false;
    const struct native_sym *syms[NATIVE_MAX_FRAMES];
    int evals_left = 0;
    for (int i = 0; i < ns->n; i++) {
        syms[i] = native_symbol(s, ns, i);
        evals_left += syms[i]->role == NROLE_EVAL;
    }
    int p = 0; /* next Python frame */
    for (int i = 0; i < ns->n; i++) {
        if (syms[i]->role != NROLE_EVAL || p == npy) {
            out->f[out->n++] = (struct mixed_frame){syms[i], ns->ip[i], {0}};
            continue;
        }
        /* The outermost eval frame takes whatever is left: with a stack
         * read in full, exactly its own group. */
        bool last = --evals_left == 0;
        int start = p;
        while (p < npy) {
            out->f[out->n++] = (struct mixed_frame){NULL, 0, py[p]};
            if (py[p++].entry && !last)
                break;
        }
        for (int k = start; last && k < p - 1; k++)
            if (py[k].entry)
                out->approximate = true;
    }
    if (p < npy)
        out->approximate = true;
    for (; p < npy; p++)
        out->f[out->n++] = (struct mixed_frame){NULL, 0, py[p]};
    return true;
}

void mixed_stack_free(struct mixed_stack *m)
{
    free(m->f);
    m->f = NULL;
    m->n = 0;
}

int mixed_as_py_frames(const struct mixed_stack *m, struct py_frame *out, int cap)
{
    int k = 0;
    for (int i = 0; i < m->n && k < cap; i++) {
        if (!m->f[i].sym)
            out[k++] = m->f[i].py;
        else if (m->f[i].sym->code)
            out[k++] = (struct py_frame){m->f[i].sym->code, -1, false};
    }
    return k;
}

enum native_state native_state_of(struct native_session *s, const struct native_stack *ns)
{
    enum native_state other = NSTATE_UNKNOWN;
    for (int i = 0; i < ns->n; i++) {
        switch (native_symbol(s, ns, i)->role) {
        /* take_gil/drop_gil anywhere decide: the GIL's own mutex and
         * condition waits below them look like any lock wait. */
        case NROLE_TAKE_GIL: return NSTATE_GIL_WAIT;
        case NROLE_DROP_GIL: return NSTATE_GIL_DROP;
        case NROLE_LOCK:
            if (other == NSTATE_UNKNOWN)
                other = NSTATE_LOCK_WAIT;
            break;
        case NROLE_GC:
            if (other == NSTATE_UNKNOWN)
                other = NSTATE_GC;
            break;
        default: break;
        }
    }
    return other;
}

const char *native_state_name(enum native_state st)
{
    switch (st) {
    case NSTATE_GIL_WAIT: return "gil_wait";
    case NSTATE_GIL_DROP: return "gil_drop";
    case NSTATE_LOCK_WAIT: return "lock_wait";
    case NSTATE_GC: return "gc";
    default: return NULL;
    }
}

bool native_state_agrees(enum native_state st, enum block_kind kind)
{
    switch (st) {
    case NSTATE_GIL_WAIT:
    case NSTATE_GIL_DROP:
        return kind != BLOCK_LOCK && kind != BLOCK_IO && kind != BLOCK_SLEEP;
    case NSTATE_LOCK_WAIT: return kind != BLOCK_GIL && kind != BLOCK_IO && kind != BLOCK_SLEEP;
    case NSTATE_GC: return kind != BLOCK_GIL;
    default: return true;
    }
}
