/* What the two ways of timing the GIL share (private to src/ebpf/): the
 * session, the probe attachment helpers, and the futex fallback's start
 * (gil_futex.c, the user side of bpf/gil_futex.bpf.c; gil.c is that of
 * bpf/gil.bpf.c and of everything common). */
#ifndef GILPROBE_GIL_PROBES_H
#define GILPROBE_GIL_PROBES_H
#ifndef GILPROBE_NO_BPF
#include <bpf/libbpf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebpf/gil.h"
#include "ebpf/gil_shared.h"
#include "python/pylayout.h"
#include "util/addrmap.h"

#define MAX_CLONES 8
#define GIL_RECENT_LONG_HOLDS 64

/* Where else the fallback must look: a new thread's first take
 * (PyEval_AcquireThread), other releases (PyEval_ReleaseThread) and a
 * thread's last one (PyThreadState_DeleteCurrent, and the internal
 * _PyThreadState_DeleteCurrent that 3.9+ threads call). The last release
 * happens inside the deletion, after the thread state is unlinked (under
 * a lock it may wait for while holding the GIL): it is probed at the
 * return. At the entry, a loaded machine saw the exiting threads' holds
 * end up to 5 points of wall time early. */
struct futex_more {
    uint64_t acquire[MAX_CLONES], release[MAX_CLONES], deleted[2 * MAX_CLONES];
    size_t nacquire, nrelease, ndeleted;
};

/* Every thread's aggregates at one instant (gil_exact_mark), with the
 * histograms kept sparse: a thread has a few dozen non-empty buckets of
 * the 992, and a long run keeps a mark a second for its window (4 KiB a
 * thread each, dense: 1.2 GB after 4 minutes of 100 thread starts/s). */
struct gil_mark_thread {
    __u32 tid;
    __u64 acquisitions, hold_total_ns, hold_max_ns, wait_total_ns, wait_max_ns, holds, waits;
    __u64 wakeups;
    __u64 wait_start_ns, hold_start_ns;
    uint32_t first, nbuckets; /* its buckets in gil_mark.b */
};

struct gil_mark_bucket {
    uint16_t index; /* < HIST_BUCKETS for holds, + HIST_BUCKETS for waits */
    uint32_t count;
};

struct gil_mark {
    bool set;
    uint64_t ns; /* CLOCK_MONOTONIC */
    struct gil_mark_thread *v;
    size_t n, cap;
    struct gil_mark_bucket *b;
    size_t nb, capb;
};

struct gil_exact {
    struct gil_bpf *uprobes;      /* take_gil/drop_gil mode, or */
    struct gil_futex_bpf *futex;  /* the futex fallback */
    struct bpf_object *obj;
    struct bpf_link *links[8 * MAX_CLONES + 8];
    int nlinks;
    int multi_fds[16]; /* multi-uprobe links, where the kernel has them */
    int nmulti;
    int multi_probes;  /* the offsets those hold */
    struct ring_buffer *rb;
    double t_start;            /* CLOCK_MONOTONIC, same clock as bpf_ktime_get_ns */
    struct long_hold_event longest[EXACT_LONGEST];
    uint32_t nlongest;
    uint64_t events;
    double threshold_ms;
    char mode[224];
    /* The fallback needs the GIL's address; a program `run` just started
     * may not have created its GIL yet (3.12+: per interpreter): the start
     * then completes at the first thread-list refresh that finds it. */
    bool pending, failed;
    struct pyrt *rt;
    uint64_t save[MAX_CLONES], restore[MAX_CLONES];
    size_t nsave, nrestore;
    struct futex_more more;
    char *why;
    size_t whysz;
    struct gil_mark marks[2]; /* the sampled window's start and end */
    /* The latest long holds, whatever their length (a long run's windows
     * pick theirs from these): circular. */
    struct long_hold_event recent[GIL_RECENT_LONG_HOLDS];
    uint32_t nrecent, recent_next;
    double last_sweep; /* gone threads were last dropped from tstates (mono_s) */
    double last_full_sweep; /* the whole map was last walked for them */
    struct addrmap registered; /* tid -> tstate: what tstates has (as far as known) */
    /* GIL blame (gil_blame.c): on for one-shot reports; the pair counts
     * and the hold count when the sampled window began. */
    bool blame;
    struct gil_blame_pair *blame_base;
    size_t nblame_base;
    uint64_t blame_seq0;
};

/* One (waiter, holder, function) count read from the kernel. */
struct gil_blame_pair {
    struct blame_key k;
    struct blame_val v;
};

/* The blame counts at the start of the sampled window (gil_exact_mark). */
void gil_blame_begin(struct gil_exact *g);
/* The window's blame into m->exact.threads[].blame (after the figures). */
void gil_blame_collect(struct gil_exact *g, struct pyrt *rt, struct pyobj_cache *c,
                       struct run_metrics *m);

#define GIL_SWEEP_EVERY_S 1.0
#define GIL_FULL_SWEEP_EVERY_S 10.0

/* The GIL and frame layout the programs read stacks with. */
void gil_fill_layout(struct gil_bpf_layout *bl, const struct py_layout *L);
/* Entry (ret false) or return probes on each of n offsets of path. */
bool gil_attach_uprobes(struct gil_exact *g, struct bpf_program *prog, bool ret, pid_t pid,
                        const char *path, const uint64_t *off, size_t n);
/* The sched_process_exit tracepoint. */
bool gil_attach_exit(struct gil_exact *g, struct bpf_program *prog);
/* What to add to a load failure's message for errno e. */
const char *gil_load_error(int e);
/* The fallback: futex waits on the GIL plus PyEval_SaveThread/RestoreThread
 * and the other ways a thread gets or loses the GIL (struct futex_more).
 * Loaded first (no GIL needed), attached once the GIL exists. */
bool gil_futex_load(struct gil_exact *g, struct pyrt *rt, char *why, size_t whysz);
bool gil_futex_attach(struct gil_exact *g, struct pyrt *rt, const uint64_t *save, size_t nsave,
                      const uint64_t *restore, size_t nrestore, const struct futex_more *more,
                      char *why, size_t whysz);
void gil_futex_destroy(struct gil_exact *g);

#endif
#endif
