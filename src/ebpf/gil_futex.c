/* The futex fallback's start: the user side of bpf/gil_futex.bpf.c, for
 * runtimes without take_gil/drop_gil symbols (stripped distribution
 * builds). The events it produces are read like the uprobe mode's (gil.c). */
#ifndef GILPROBE_NO_BPF
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gil_probes.h"
#include "links.h"
#include "gil_futex.skel.h"
#include "python/gil.h"

/* The fallback's programs, loaded without the GIL's address (the slow
 * part: the verifier). Nothing is attached yet. */
bool gil_futex_load(struct gil_exact *g, struct pyrt *rt, char *why, size_t whysz)
{
    g->futex = gil_futex_bpf__open();
    if (!g->futex) {
        snprintf(why, whysz, "cannot open the GIL futex BPF program: %s", strerror(errno));
        return false;
    }
    g->obj = g->futex->obj;
    g->futex->rodata->long_hold_ns = (uint64_t)(g->threshold_ms * 1e6);
    g->futex->rodata->target_tgid = (uint32_t)rt->pid;
    g->futex->rodata->blame_on = g->blame;
    gil_fill_layout((struct gil_bpf_layout *)&g->futex->rodata->layout, &rt->layout);
    links_prepare_uprobe_multi(g->futex->obj);
    if (gil_futex_bpf__load(g->futex) != 0 || !g->futex->bss) {
        int e = errno;
        snprintf(why, whysz, "cannot load the GIL futex BPF program: %s%s", strerror(e),
                 gil_load_error(e));
        return false;
    }
    return true;
}

/* The loaded fallback told where the GIL is, then attached: futex waits on
 * the GIL plus PyEval_SaveThread/RestoreThread and the rest of *more. */
bool gil_futex_attach(struct gil_exact *g, struct pyrt *rt, const uint64_t *save, size_t nsave,
                      const uint64_t *restore, size_t nrestore, const struct futex_more *more,
                      char *why, size_t whysz)
{
    uint64_t gil = gil_locate(rt);
    if (!gil) {
        snprintf(why, whysz, "cannot locate the GIL of process %d", rt->pid);
        return false;
    }
    struct gil_futex_bpf *k = g->futex;
    k->bss->gil_start = gil;
    k->bss->gil_end = gil + (uint64_t)rt->layout.gil_size;
    k->bss->gil_last_holder = gil + (uint64_t)rt->layout.gil_last_holder;
    k->bss->gil_locked = gil + (uint64_t)rt->layout.gil_locked;
    g->links[g->nlinks] = bpf_program__attach_raw_tracepoint(k->progs.gp_futex_enter, "sys_enter");
    if (g->links[g->nlinks])
        g->nlinks++;
    g->links[g->nlinks] = bpf_program__attach_raw_tracepoint(k->progs.gp_futex_exit, "sys_exit");
    if (g->links[g->nlinks])
        g->nlinks++;
    if (g->nlinks != 2 ||
        !gil_attach_uprobes(g, k->progs.gp_save_thread, false, rt->pid, rt->binary_open, save, nsave) ||
        !gil_attach_uprobes(g, k->progs.gp_restore_thread, true, rt->pid, rt->binary_open, restore,
                    nrestore) ||
        !gil_attach_uprobes(g, k->progs.gp_restore_thread, true, rt->pid, rt->binary_open, more->acquire,
                    more->nacquire) ||
        !gil_attach_uprobes(g, k->progs.gp_learn_tstate, false, rt->pid, rt->binary_open, restore,
                    nrestore) ||
        !gil_attach_uprobes(g, k->progs.gp_learn_tstate, false, rt->pid, rt->binary_open, more->acquire,
                    more->nacquire) ||
        !gil_attach_uprobes(g, k->progs.gp_save_thread, false, rt->pid, rt->binary_open, more->release,
                    more->nrelease) ||
        !gil_attach_uprobes(g, k->progs.gp_thread_deleted, true, rt->pid, rt->binary_open, more->deleted,
                    more->ndeleted) ||
        !gil_attach_exit(g, k->progs.gp_thread_exit)) {
        snprintf(why, whysz, "cannot attach the GIL futex probes to process %d: %s", rt->pid,
                 strerror(errno));
        return false;
    }
    snprintf(g->mode, sizeof g->mode,
             "fallback: futex waits on the GIL (raw syscall tracepoints) + "
             "PyEval_Save/Restore/Acquire/ReleaseThread, thread deletion uprobes%s, thread exits",
             g->nmulti ? " (multi-uprobe links)" : "");
    return true;
}

void gil_futex_destroy(struct gil_exact *g)
{
    gil_futex_bpf__destroy(g->futex);
    g->futex = NULL;
}

#else
typedef int gil_futex_unused; /* ISO C wants something in a translation unit */
#endif
