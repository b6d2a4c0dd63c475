#include "python/thread_names.h"
#include "python/pydict.h"
#include "python/work_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bound on an instance's attributes one read walks. */
#define ATTRS_MAX_ENTRIES 256

#define NO_THREADING "threading is not imported"
#define NO_TABLE "threading._active could not be read"
#define NOT_THREAD "not a threading.Thread (started through _thread)"
#define UNPUBLISHED "dict layouts are not published by this version's _Py_DebugOffsets"

void thread_names_init(struct thread_names *tn)
{
    memset(tn, 0, sizeof *tn);
}

void thread_names_free(struct thread_names *tn)
{
    free(tn->v);
    thread_names_init(tn);
}

/* threading._active, through sys.modules of the main interpreter (the
 * list's head is the newest interpreter, a subinterpreter's own modules). */
static uint64_t find_active(struct pyrt *rt, struct pyobj_cache *c, const char **why)
{
    bool imported;
    uint64_t mdict = pymodule_find(rt, c, "threading", &imported);
    uint64_t active = mdict ? pymodule_attr(rt, c, mdict, "_active") : 0;
    *why = !mdict && !imported ? NO_THREADING : NO_TABLE;
    return active;
}

static bool names_supported(const struct py_layout *L)
{
    return L->dict_model >= 0 && L->interp_modules >= 0 && L->dk_nentries >= 0 &&
           L->dk_indices >= 0 && L->long_model >= 0 && L->type_flags >= 0;
}

void thread_names_read(struct pyrt *rt, struct pyobj_cache *c, struct thread_names *tn)
{
    tn->n = 0;
    if (!names_supported(&rt->layout)) {
        tn->why_none = UNPUBLISHED;
        return;
    }
    struct pydict_entry *threads = malloc(THREAD_NAMES_MAX * sizeof *threads);
    struct pydict_entry attrs[ATTRS_MAX_ENTRIES];
    if (!threads || (!tn->v && !(tn->v = calloc(THREAD_NAMES_MAX, sizeof *tn->v)))) {
        free(threads);
        tn->why_none = NO_TABLE;
        return;
    }
    int n = tn->active ? pydict_entries(rt, tn->active, threads, THREAD_NAMES_MAX) : -1;
    if (n < 0) { /* not found yet, or no longer a dict: look it up again */
        tn->active = find_active(rt, c, &tn->why_none);
        n = tn->active ? pydict_entries(rt, tn->active, threads, THREAD_NAMES_MAX) : -1;
    }
    if (n < 0) {
        free(threads);
        return;
    }
    tn->why_none = NULL;
    for (int i = 0; i < n; i++) {
        uint64_t ident, name_obj;
        int na = pyint_u64(rt, threads[i].key, &ident)
                     ? pyobj_instance_attrs(rt, threads[i].value, attrs, ATTRS_MAX_ENTRIES)
                     : -1;
        if (na <= 0 || !(name_obj = pydict_find_str(rt, c, attrs, na, "_name")))
            continue;
        char *name = pyobj_str_copy(rt, c, name_obj); /* one per thread: not cached */
        if (!name)
            continue;
        struct thread_name *t = &tn->v[tn->n++];
        t->ident = ident;
        snprintf(t->name, sizeof t->name, "%s", name);
        free(name);
        /* A pool worker's Thread keeps its target's args while it runs. */
        uint64_t args = pydict_find_str(rt, c, attrs, na, "_args");
        t->work_queue = args ? work_queue_in_args(rt, args) : 0;
    }
    free(threads);
}

const char *thread_names_find(const struct thread_names *tn, uint64_t ident, const char **why)
{
    for (uint32_t i = 0; i < tn->n; i++)
        if (tn->v[i].ident == ident) {
            *why = NULL;
            return tn->v[i].name;
        }
    *why = tn->why_none ? tn->why_none : NOT_THREAD;
    return NULL;
}

uint64_t thread_names_work_queue(const struct thread_names *tn, uint64_t ident)
{
    for (uint32_t i = 0; i < tn->n; i++)
        if (tn->v[i].ident == ident)
            return tn->v[i].work_queue;
    return 0;
}

void thread_display_name(const char *python_name, const char *os_name, const char *process_name,
                         char *out, size_t outsz)
{
    if (!python_name || !*python_name) {
        snprintf(out, outsz, "%s", os_name);
        return;
    }
    size_t on = strlen(os_name);
    /* The kernel keeps 15 bytes of a thread's name. */
    bool same = strcmp(python_name, os_name) == 0 ||
                (on == 15 && strncmp(python_name, os_name, on) == 0) ||
                (process_name && strcmp(os_name, process_name) == 0);
    if (same)
        snprintf(out, outsz, "%s", python_name);
    else
        snprintf(out, outsz, "%s [%s]", python_name, os_name);
}
