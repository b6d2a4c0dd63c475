/* asyncio tasks of CPython 3.14+, through the offsets the process itself
 * publishes: see python/asyncio_debug.h. */
#include "python/asyncio_debug.h"

#include <stdio.h>
#include <string.h>

#include "target/elfsym.h"
#include "target/proc.h"

#define SECTION ".AsyncioDebug"
#define NFIELDS 13 /* the u64s of _Py_AsyncioModuleDebugOffsets (3.14) */

#define NO_MODULE "asyncio's C module is not loaded (no _asyncio mapped with an " SECTION " section)"
#define BAD_TABLE "the process's " SECTION " table is implausible"

/* Every offset inside the object it describes, each object of a sane size. */
static bool plausible(const struct asyncio_debug *d)
{
    return d->task_size >= 32 && d->task_size <= 4096 && d->task_name + 8 <= d->task_size &&
           d->task_coro + 8 <= d->task_size && d->task_node + 16 <= d->task_size &&
           d->task_awaited_by + 8 <= d->task_size && d->task_awaited_by_is_set < d->task_size &&
           d->task_is_task < d->task_size && d->interp_size <= (64u << 20) &&
           d->interp_tasks_head + 16 <= d->interp_size && d->ts_size <= (1u << 20) &&
           d->ts_running_loop + 8 <= d->ts_size && d->ts_running_task + 8 <= d->ts_size &&
           d->ts_tasks_head + 16 <= d->ts_size;
}

/* The table in the mapping m (a file with the section), read from the
 * process's memory. */
static bool table_in(struct pyrt *rt, const struct proc_map *m, struct asyncio_debug *dbg)
{
    struct elf_file ef;
    char used[PATH_MAX + 32];
    if (elf_file_open_mapped(rt->pid, m, &ef, used, sizeof used) != 0)
        return false;
    uint64_t addr, size;
    bool found = elf_file_section(&ef, SECTION, &addr, &size) && size >= NFIELDS * 8;
    uint64_t at = m->start - ef.min_vaddr + addr;
    elf_file_close(&ef);
    uint64_t v[NFIELDS];
    if (!found || remote_read(&rt->mem, at, v, sizeof v) != 0)
        return false;
    memcpy(dbg, v, sizeof v);
    return true;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

bool asyncio_debug_find(struct pyrt *rt, struct asyncio_debug *dbg, const char **why)
{
    struct proc_maps maps = {0};
    *why = NO_MODULE;
    if (proc_read_maps(rt->pid, &maps) != 0)
        return false;
    bool found = false;
    /* The _asyncio extension module, then the runtime (a build that links
     * _asyncio in). */
    for (int pass = 0; pass < 2 && !found; pass++)
        for (size_t i = 0; i < maps.n && !found; i++) {
            const struct proc_map *m = &maps.v[i];
            if (m->offset != 0 || m->path[0] != '/')
                continue;
            bool want = pass == 0 ? strncmp(base_name(m->path), "_asyncio.", 9) == 0
                                  : strcmp(m->path, rt->binary) == 0;
            found = want && table_in(rt, m, dbg);
        }
    proc_maps_free(&maps);
    if (found && !plausible(dbg)) {
        *why = BAD_TABLE;
        return false;
    }
    return found;
}

/* One circular list from its head: bounded (a list that never comes back
 * to its head ends at ASYNCIO_TASKS_MAX nodes), each task type-checked. */
static void walk_list(struct pyrt *rt, struct pyobj_cache *c, const struct asyncio_debug *d,
                      uint64_t head, int32_t tid, uint64_t running, struct asyncio_tasks *out)
{
    uint64_t node;
    uint8_t raw[4096];
    uint64_t loop_at = (uint64_t)rt->layout.obj_type + 8; /* FutureObj_HEAD's first field */
    if (!remote_u64(&rt->mem, head, &node))
        return;
    for (uint32_t steps = 0; node && node != head && steps < ASYNCIO_TASKS_MAX; steps++) {
        uint64_t task = node - d->task_node;
        if (remote_read(&rt->mem, task, raw, (size_t)d->task_size) != 0)
            return;
        if (raw[d->task_is_task] == 1 && out->n < ASYNCIO_TASKS_MAX) {
            struct asyncio_task *t = &out->v[out->n];
            memset(t, 0, sizeof *t);
            t->addr = task;
            t->tid = tid;
            t->native = true;
            t->state = task == running ? TASK_RUNNING : TASK_PENDING;
            memcpy(&t->loop, raw + loop_at, 8);
            uint64_t name;
            memcpy(&name, raw + d->task_name, 8);
            memcpy(&t->coro, raw + d->task_coro, 8);
            memcpy(&t->awaited_by_obj, raw + d->task_awaited_by, 8);
            t->awaited_by_is_set = raw[d->task_awaited_by_is_set] != 0;
            asyncio_task_name(rt, c, name, t->name, sizeof t->name);
            out->n++;
        } else if (out->n == ASYNCIO_TASKS_MAX) {
            out->truncated = true;
            return;
        }
        memcpy(&node, raw + d->task_node, 8); /* llist_node.next */
    }
}

void asyncio_debug_tasks(struct pyrt *rt, struct pyobj_cache *c, const struct asyncio_debug *dbg,
                         const struct asyncio_thread *threads, size_t nthreads, uint64_t interp,
                         struct asyncio_tasks *out)
{
    for (size_t i = 0; i < nthreads; i++) {
        uint64_t ts = threads[i].tstate, running = 0;
        if (!ts)
            continue;
        remote_u64(&rt->mem, ts + dbg->ts_running_task, &running);
        walk_list(rt, c, dbg, ts + dbg->ts_tasks_head, threads[i].tid, running, out);
    }
    /* Tasks whose thread state was cleared: no thread, none running. */
    if (interp)
        walk_list(rt, c, dbg, interp + dbg->interp_tasks_head, 0, 0, out);
}
