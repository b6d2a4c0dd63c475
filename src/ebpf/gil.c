#include "ebpf/gil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "ebpf/gil_shared.h"
#include "python/gil.h"
#include "python/stackwalk.h"
#include "target/elfsym.h"
#include "util/addrmap.h"
#include "util/grow.h"
#include "util/quantiles.h"

#ifdef GILPROBE_NO_BPF

struct gil_exact *gil_exact_start(struct pyrt *rt, double long_hold_ms, bool force, bool blame,
                                  char *why, size_t whysz)
{
    (void)rt;
    (void)blame;
    (void)long_hold_ms;
    (void)force;
    snprintf(why, whysz, "gilprobe was built without eBPF (no kernel BTF at build time)");
    return NULL;
}

void gil_exact_update(struct gil_exact *g, const struct snapshot *snap)
{
    (void)g;
    (void)snap;
}

void gil_exact_collect(struct gil_exact *g, struct pyrt *rt, struct pyobj_cache *c,
                       struct run_metrics *m)
{
    (void)g;
    (void)rt;
    (void)c;
    (void)m;
}

void gil_exact_mark(struct gil_exact *g, bool end, double at)
{
    (void)g;
    (void)end;
    (void)at;
}

void gil_exact_stop(struct gil_exact *g)
{
    (void)g;
}

struct gil_mark *gil_exact_mark_take(struct gil_exact *g)
{
    (void)g;
    return NULL;
}

void gil_exact_mark_free(struct gil_mark *mk)
{
    (void)mk;
}

void gil_exact_forget_dead(struct gil_exact *g, const struct gil_mark *oldest,
                           const struct gil_mark *newest)
{
    (void)g;
    (void)oldest;
    (void)newest;
}

void gil_exact_collect_span(struct gil_exact *g, const struct gil_mark *from,
                            const struct gil_mark *to, struct pyrt *rt, struct pyobj_cache *c,
                            struct run_metrics *m)
{
    (void)g;
    (void)from;
    (void)to;
    (void)rt;
    (void)c;
    (void)m;
}

void gil_exact_clear(struct run_metrics *m)
{
    metrics_exact_threads_free(&m->exact);
    memset(&m->exact, 0, sizeof m->exact);
}

#else

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "target/uretprobe_safety.h"
#include "gil.skel.h"
#include "gil_probes.h"
#include "links.h"
#include "util/clock.h"

static int map_fd(const struct gil_exact *g, const char *name)
{
    return bpf_map__fd(bpf_object__find_map_by_name(g->obj, name));
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    (void)level;
    (void)fmt;
    (void)ap;
    return 0;
}

/* Keeps the EXACT_LONGEST longest holds. */
static int on_long_hold(void *ctx, void *data, size_t len)
{
    struct gil_exact *g = ctx;
    const struct long_hold_event *ev = data;
    if (len < sizeof *ev)
        return 0;
    g->events++;
    uint32_t slot = g->nlongest;
    if (slot == EXACT_LONGEST) {
        slot = 0;
        for (uint32_t i = 1; i < EXACT_LONGEST; i++)
            if (g->longest[i].hold_ns < g->longest[slot].hold_ns)
                slot = i;
        if (g->longest[slot].hold_ns >= ev->hold_ns)
            return 0;
    } else {
        g->nlongest++;
    }
    g->longest[slot] = *ev;
    return 0;
}

/* Every long hold, into the circular list of the latest, and the longest
 * ones of the run. */
static int on_long_hold_event(void *ctx, void *data, size_t len)
{
    struct gil_exact *g = ctx;
    if (len < sizeof(struct long_hold_event))
        return 0;
    g->recent[g->recent_next] = *(const struct long_hold_event *)data;
    g->recent_next = (g->recent_next + 1) % GIL_RECENT_LONG_HOLDS;
    if (g->nrecent < GIL_RECENT_LONG_HOLDS)
        g->nrecent++;
    return on_long_hold(ctx, data, len);
}

void gil_fill_layout(struct gil_bpf_layout *bl, const struct py_layout *L)
{
    bl->frame_model = L->frame_model;
    bl->root_off = stackwalk_root_offset(L);
    bl->cframe_current_frame = L->cframe_current_frame;
    if (L->frame_model == FRAME_OBJECTS) {
        bl->frame_code = L->frameobj_code;
        bl->frame_pos = L->frameobj_lasti;
        bl->frame_prev = L->frameobj_back;
        bl->frame_owner = -1;
        bl->owner_cstack = -1;
        bl->pos_is_int = 1;
    } else {
        bl->frame_code = L->iframe_code;
        bl->frame_pos = L->iframe_instr;
        bl->frame_prev = L->iframe_previous;
        bl->frame_owner = L->iframe_owner;
        bl->owner_cstack = L->owner_cstack;
        bl->pos_is_int = 0;
    }
}

/* A uprobe on an instruction the kernel cannot emulate is single-stepped
 * out of line: a second trap per hit. CET builds (e.g. Debian's 3.14) start
 * every function with endbr64, which is such an instruction and does
 * nothing for the probe; the next one (often a push, emulated) does as
 * well, with the same registers and the return address still on top of the
 * stack, so entry and return probes go there. Measured on this VM: target
 * CPU 13% -> 50% with the probes on endbr64 on an I/O-bound workload. */
static uint64_t past_endbr64(int fd, uint64_t off)
{
    static const uint8_t endbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
    uint8_t insn[4];
    if (pread(fd, insn, sizeof insn, (off_t)off) == (ssize_t)sizeof insn &&
        memcmp(insn, endbr64, sizeof insn) == 0)
        return off + sizeof insn;
    return off;
}

/* Whether the kernel emulates the instruction at `off` (a push: one trap
 * per hit) rather than single-stepping it out of line (two traps). */
static bool emulated_push(int fd, uint64_t off)
{
    uint8_t insn[2];
    if (pread(fd, insn, sizeof insn, (off_t)off) != (ssize_t)sizeof insn)
        return false;
    return (insn[0] >= 0x50 && insn[0] <= 0x57) ||
           (insn[0] == 0x41 && insn[1] >= 0x50 && insn[1] <= 0x57);
}

/* File offsets at which to probe every function named `base` or a clone
 * of it. */
static size_t function_offsets(struct elf_file *ef, const char *base, uint64_t *off)
{
    uint64_t v[MAX_CLONES];
    size_t n = elf_file_functions(ef, base, v, MAX_CLONES), k = 0;
    for (size_t i = 0; i < n; i++)
        if (elf_file_offset_of(ef, v[i], &off[k])) {
            off[k] = past_endbr64(ef->fd, off[k]);
            k++;
        }
    return k;
}

bool gil_attach_uprobes(struct gil_exact *g, struct bpf_program *prog, bool ret, pid_t pid,
                       const char *path, const uint64_t *off, size_t n)
{
    if (n && links_uprobe_multi()) {
        if (g->nmulti == (int)(sizeof g->multi_fds / sizeof g->multi_fds[0]))
            return false;
        int fd = links_attach_uprobe_multi(bpf_program__fd(prog), pid, path, off, n, ret);
        if (fd < 0)
            return false;
        g->multi_fds[g->nmulti++] = fd;
        g->multi_probes += (int)n;
        return true;
    }
    for (size_t i = 0; i < n && g->nlinks < (int)(sizeof g->links / sizeof g->links[0]); i++) {
        g->links[g->nlinks] = bpf_program__attach_uprobe(prog, ret, pid, path, off[i]);
        if (!g->links[g->nlinks])
            return false;
        g->nlinks++;
    }
    return true;
}

/* The sched_process_exit tracepoint: where a thread's hold or wait ends
 * whatever path it left by. */
bool gil_attach_exit(struct gil_exact *g, struct bpf_program *prog)
{
    if (g->nlinks == (int)(sizeof g->links / sizeof g->links[0]))
        return false;
    g->links[g->nlinks] = bpf_program__attach_raw_tracepoint(prog, "sched_process_exit");
    return g->links[g->nlinks] && ++g->nlinks;
}

const char *gil_load_error(int e)
{
    return e == EPERM ? " (needs root, or CAP_BPF and CAP_PERFMON)" : "";
}

/* take_gil/drop_gil mode. */
static bool start_uprobes(struct gil_exact *g, struct pyrt *rt, const uint64_t *take, size_t ntake,
                          const uint64_t *drop, size_t ndrop, char *why, size_t whysz)
{
    g->uprobes = gil_bpf__open();
    if (!g->uprobes) {
        snprintf(why, whysz, "cannot open the GIL BPF program: %s", strerror(errno));
        return false;
    }
    g->obj = g->uprobes->obj;
    g->uprobes->rodata->long_hold_ns = (uint64_t)(g->threshold_ms * 1e6);
    g->uprobes->rodata->target_tgid = (uint32_t)rt->pid;
    g->uprobes->rodata->blame_on = g->blame;
    gil_fill_layout((struct gil_bpf_layout *)&g->uprobes->rodata->layout, &rt->layout);
    links_prepare_uprobe_multi(g->uprobes->obj);
    if (gil_bpf__load(g->uprobes) != 0) {
        int e = errno;
        snprintf(why, whysz, "cannot load the GIL BPF program: %s%s", strerror(e), gil_load_error(e));
        return false;
    }
    struct gil_bpf *k = g->uprobes;
    if (!gil_attach_uprobes(g, k->progs.gp_take_gil_in, false, rt->pid, rt->binary_open, take, ntake) ||
        !gil_attach_uprobes(g, k->progs.gp_take_gil_out, true, rt->pid, rt->binary_open, take, ntake) ||
        !gil_attach_uprobes(g, k->progs.gp_drop_gil, false, rt->pid, rt->binary_open, drop, ndrop) ||
        !gil_attach_uprobes(g, k->progs.gp_drop_gil_out, true, rt->pid, rt->binary_open, drop, ndrop) ||
        !gil_attach_exit(g, k->progs.gp_thread_exit)) {
        snprintf(why, whysz, "cannot attach uprobes to %s: %s", rt->binary, strerror(errno));
        return false;
    }
    snprintf(g->mode, sizeof g->mode, "uprobes on take_gil and drop_gil (entry+return), %d probes%s",
             g->nlinks + g->multi_probes, g->nmulti ? " in multi-uprobe links" : "");
    return true;
}


static void begin_window(struct gil_exact *g, struct pyrt *rt);

struct gil_exact *gil_exact_start(struct pyrt *rt, double long_hold_ms, bool force, bool blame,
                                  char *why, size_t whysz)
{
    if (rt->free_threaded) {
        snprintf(why, whysz, "a free-threaded build: the GIL is normally off, nothing to time");
        return NULL;
    }
    /* both modes time a hold's end with return probes */
    if (uretprobes_unsafe(rt->pid, why, whysz))
        return NULL;
    struct elf_file ef;
    if (elf_file_open(rt->binary_open, &ef) != 0) {
        snprintf(why, whysz, "cannot open %s for its symbols", rt->binary);
        return NULL;
    }
    uint64_t take[MAX_CLONES], drop[MAX_CLONES], save[MAX_CLONES], restore[MAX_CLONES];
    size_t ntake = function_offsets(&ef, "take_gil", take);
    size_t ndrop = function_offsets(&ef, "drop_gil", drop);
    size_t nsave = function_offsets(&ef, "PyEval_SaveThread", save);
    size_t nrestore = function_offsets(&ef, "PyEval_RestoreThread", restore);
    struct futex_more more = {0};
    more.nacquire = function_offsets(&ef, "PyEval_AcquireThread", more.acquire);
    more.nrelease = function_offsets(&ef, "PyEval_ReleaseThread", more.release);
    more.ndeleted = function_offsets(&ef, "PyThreadState_DeleteCurrent", more.deleted);
    more.ndeleted += function_offsets(&ef, "_PyThreadState_DeleteCurrent",
                                      more.deleted + more.ndeleted);
    /* The fallback probes fire on every GIL release around a blocking
     * call. Where PyEval_SaveThread starts with an instruction the kernel
     * must single-step (Debian's 3.14: sub after endbr64), each hit costs
     * two traps: measured on this VM, an I/O-bound target's CPU went from
     * 15% to 38% and its GIL holds stretched 5x. Not by default, then. */
    bool costly = !(ntake && ndrop) && nsave && !emulated_push(ef.fd, save[0]);
    elf_file_close(&ef);
    if (costly && !force) {
        snprintf(why, whysz, "not by default for this build: probing its PyEval_SaveThread "
                 "needs a single-step per hit (costs an I/O-bound target 2-3x CPU); --bpf "
                 "measures anyway");
        return NULL;
    }
    libbpf_set_print(quiet);
    struct gil_exact *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->threshold_ms = long_hold_ms;
    g->blame = blame;
    bool ok;
    if (ntake && ndrop)
        ok = start_uprobes(g, rt, take, ntake, drop, ndrop, why, whysz);
    else if (nsave && nrestore && !gil_locate(rt)) {
        /* Not created yet: loaded now (while `run` holds the program),
         * attached by gil_exact_update once the GIL exists. */
        ok = gil_futex_load(g, rt, why, whysz);
        g->pending = true;
        g->rt = rt;
        memcpy(g->save, save, sizeof save);
        memcpy(g->restore, restore, sizeof restore);
        g->nsave = nsave;
        g->nrestore = nrestore;
        g->more = more;
        g->why = why;
        g->whysz = whysz;
        if (ok)
            snprintf(why, whysz, "the program had not created its GIL before it ended");
    } else if (nsave && nrestore)
        ok = gil_futex_load(g, rt, why, whysz) &&
             gil_futex_attach(g, rt, save, nsave, restore, nrestore, &more, why, whysz);
    else {
        snprintf(why, whysz, "%s has neither take_gil/drop_gil nor PyEval_SaveThread/"
                 "RestoreThread to probe", rt->binary);
        ok = false;
    }
    if (!ok) {
        gil_exact_stop(g);
        return NULL;
    }
    if (g->pending)
        return g;
    begin_window(g, rt);
    return g;
}

/* The measured window begins: long-hold events, the clock, and the hold of
 * whoever has the GIL now (taken before the probes could see it). */
static void begin_window(struct gil_exact *g, struct pyrt *rt)
{
    g->rb = ring_buffer__new(map_fd(g, "long_holds"), on_long_hold_event, g, NULL);
    g->t_start = clock_mono_s();
    /* Thread states for the stacks of long holds from the start; and the
     * thread holding the GIL now took it before we could see: count its
     * hold from now on. */
    struct gil_state gs;
    struct snapshot snap;
    struct gp_error err = {0};
    gil_read(rt, &gs);
    if (snapshot_take(rt, NULL, false, &snap, &err) == GP_OK) {
        gil_exact_update(g, &snap);
        for (size_t i = 0; i < snap.nthreads && gs.locked == 1; i++) {
            if (snap.threads[i].tstate != gs.holder || !snap.threads[i].tid)
                continue;
            struct gil_thread_stats z;
            memset(&z, 0, sizeof z);
            z.hold_start_ns = (uint64_t)(g->t_start * 1e9);
            __u32 tid = (__u32)snap.threads[i].tid;
            bpf_map_update_elem(map_fd(g, "gil_threads"), &tid, &z, BPF_NOEXIST);
        }
        snapshot_free(&snap);
    }
}

void gil_exact_update(struct gil_exact *g, const struct snapshot *snap)
{
    if (!g || g->failed)
        return;
    if (g->pending) {
        if (!gil_locate(g->rt))
            return;
        g->pending = false;
        if (!gil_futex_attach(g, g->rt, g->save, g->nsave, g->restore, g->nrestore, &g->more,
                              g->why, g->whysz)) {
            g->failed = true;
            return;
        }
        begin_window(g, g->rt); /* calls back here with the threads */
        return;
    }
    if (!snap) {
        if (g->rb)
            ring_buffer__consume(g->rb);
        return;
    }
    int fd = map_fd(g, "tstates");
    for (size_t i = 0; i < snap->nthreads; i++) {
        __u32 tid = (__u32)snap->threads[i].tid;
        __u64 ts = snap->threads[i].tstate;
        /* (only what the map does not have: ten refreshes a second) */
        if (tid && (uint64_t)(uintptr_t)addrmap_get(&g->registered, tid) != ts &&
            bpf_map_update_elem(fd, &tid, &ts, BPF_ANY) == 0)
            addrmap_put(&g->registered, tid, (void *)(uintptr_t)ts);
    }
    if (g->rb)
        ring_buffer__consume(g->rb);
    /* Forget threads that are gone (their statistics stay): a long run
     * with thread churn must not fill the map; once a second is enough for
     * that (and a tenth of the walks). One walk collects the dead
     * keys, then they are deleted: restarting the walk after each delete,
     * with a linear search of the live list per key, was quadratic and at
     * ~1000 new threads/s made each refresh take 50-350 ms, long enough to
     * miss whole thread lifetimes. */
    double now = clock_mono_s();
    if (now - g->last_sweep < GIL_SWEEP_EVERY_S)
        return;
    g->last_sweep = now;
    struct addrmap live;
    addrmap_init(&live);
    for (size_t i = 0; i < snap->nthreads; i++)
        if (snap->threads[i].tid > 0)
            addrmap_put(&live, (uint64_t)snap->threads[i].tid, (void *)1);
    __u32 key, next, *dead = NULL;
    size_t ndead = 0, cap = 0;
    /* Those we registered are known: dropped without reading the map. The
     * fallback's programs add entries of their own, and a walk of the map
     * visits every bucket (8% of a collector's CPU at 2 Hz, once a second):
     * the whole map is walked only every GIL_FULL_SWEEP_EVERY_S. */
    bool full = now - g->last_full_sweep >= GIL_FULL_SWEEP_EVERY_S;
    for (size_t i = 0; !full && i < g->registered.cap; i++) {
        uint64_t tid = g->registered.keys[i];
        if (!tid || addrmap_get(&live, tid))
            continue;
        if (!(cap = grow_for(&dead, sizeof *dead, ndead, cap, 64)))
            break;
        dead[ndead++] = (__u32)tid;
    }
    if (full)
        g->last_full_sweep = now;
    bool first = true;
    while (full && bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
        first = false;
        key = next;
        if (next && addrmap_get(&live, next))
            continue;
        if (!(cap = grow_for(&dead, sizeof *dead, ndead, cap, 64)))
            break;
        dead[ndead++] = next;
    }
    for (size_t i = 0; i < ndead; i++)
        bpf_map_delete_elem(fd, &dead[i]);
    free(dead);
    addrmap_free(&live);
    addrmap_clear(&g->registered); /* what the map now has: the live ones */
    for (size_t i = 0; i < snap->nthreads; i++)
        if (snap->threads[i].tid > 0)
            addrmap_put(&g->registered, (uint64_t)snap->threads[i].tid,
                        (void *)(uintptr_t)snap->threads[i].tstate);
}

/* Lower and upper bound (ns) of a histogram bucket. */
static void bucket_range(uint32_t b, double *lo, double *hi)
{
    if (b == 0) {
        *lo = 0;
        *hi = (double)(1ULL << HIST_MIN_SHIFT);
        return;
    }
    uint32_t msb = b / HIST_SUB + HIST_MIN_SHIFT, sub = b % HIST_SUB;
    double step = (double)(1ULL << (msb - HIST_SUB_BITS));
    *lo = (HIST_SUB + sub) * step;
    *hi = *lo + step;
}

static double hist_percentile(const uint64_t *h, uint64_t n, double p, double max_ns)
{
    if (!n)
        return 0;
    uint64_t rank = (uint64_t)nearest_rank_index((size_t)n, p) + 1, seen = 0;
    for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
        if (!h[b])
            continue;
        if (seen + h[b] >= rank) {
            double lo, hi;
            bucket_range(b, &lo, &hi);
            /* Linear within the bucket, never beyond the true maximum. */
            double v = lo + (hi - lo) * ((double)(rank - seen) - 0.5) / (double)h[b];
            return v < max_ns ? v : max_ns;
        }
        seen += h[b];
    }
    return max_ns;
}

/* A log-linear histogram into the coarse export buckets (exact_le_bounds_s). */
/* Waits whose bucket lies wholly at or above `ns` (0: none counted). */
static uint64_t waits_at_least(const uint64_t *h, double ns)
{
    uint64_t n = 0;
    for (uint32_t b = 0; ns > 0 && b < HIST_BUCKETS; b++) {
        double lo, hi;
        bucket_range(b, &lo, &hi);
        if (lo >= ns)
            n += h[b];
    }
    return n;
}

static void coarse_hist(const uint64_t *h, uint64_t *le)
{
    memset(le, 0, (EXACT_LE_BOUNDS + 1) * sizeof *le);
    uint32_t at = 0;
    for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
        if (!h[b])
            continue;
        double lo, hi;
        bucket_range(b, &lo, &hi);
        double mid_s = (lo + hi) / 2e9;
        while (at < EXACT_LE_BOUNDS && mid_s > exact_le_bounds_s[at])
            at++;
        le[at] += h[b];
    }
}

static void make_dist(struct exact_dist *d, const uint64_t *h, uint64_t count, uint64_t total_ns,
                      uint64_t max_ns)
{
    d->count = count;
    d->total_ms = (double)total_ns / 1e6;
    d->mean_ms = count ? d->total_ms / (double)count : 0;
    d->max_ms = (double)max_ns / 1e6;
    d->p50_ms = hist_percentile(h, count, 0.50, (double)max_ns) / 1e6;
    d->p90_ms = hist_percentile(h, count, 0.90, (double)max_ns) / 1e6;
    d->p99_ms = hist_percentile(h, count, 0.99, (double)max_ns) / 1e6;
}

/* One thread's aggregates, kept sparse in mk. False when out of memory. */
static bool keep_thread(struct gil_mark *mk, __u32 tid, const struct gil_thread_stats *st)
{
    size_t ncap = grow_for(&mk->v, sizeof *mk->v, mk->n, mk->cap, 64);
    if (!ncap)
        return false;
    mk->cap = ncap;
    struct gil_mark_thread *t = &mk->v[mk->n];
    *t = (struct gil_mark_thread){.tid = tid,
                                  .acquisitions = st->acquisitions,
                                  .wakeups = st->wakeups,
                                  .hold_total_ns = st->hold_total_ns,
                                  .hold_max_ns = st->hold_max_ns,
                                  .wait_total_ns = st->wait_total_ns,
                                  .wait_max_ns = st->wait_max_ns,
                                  .holds = st->holds,
                                  .waits = st->waits,
                                  .wait_start_ns = st->wait_start_ns,
                                  .hold_start_ns = st->hold_start_ns,
                                  .first = (uint32_t)mk->nb};
    for (uint32_t k = 0; k < 2 * HIST_BUCKETS; k++) {
        const uint32_t *h = k < HIST_BUCKETS ? &st->hold_hist[k] : &st->wait_hist[k - HIST_BUCKETS];
        /* Most buckets are empty: skip them eight at a time. */
        if (k % 8 == 0 && k % HIST_BUCKETS + 8 <= HIST_BUCKETS &&
            !(h[0] | h[1] | h[2] | h[3] | h[4] | h[5] | h[6] | h[7])) {
            k += 7;
            continue;
        }
        uint32_t c = *h;
        if (!c)
            continue;
        size_t bcap = grow_for(&mk->b, sizeof *mk->b, mk->nb, mk->capb, 256);
        if (!bcap)
            return false;
        mk->capb = bcap;
        mk->b[mk->nb++] = (struct gil_mark_bucket){(uint16_t)k, c};
        t->nbuckets++;
    }
    mk->n++;
    return true;
}

/* A kept thread's aggregates whole again, into out. */
static void expand(const struct gil_mark *mk, const struct gil_mark_thread *t,
                   struct gil_thread_stats *out)
{
    memset(out, 0, sizeof *out);
    out->acquisitions = t->acquisitions;
    out->wakeups = t->wakeups;
    out->hold_total_ns = t->hold_total_ns;
    out->hold_max_ns = t->hold_max_ns;
    out->wait_total_ns = t->wait_total_ns;
    out->wait_max_ns = t->wait_max_ns;
    out->holds = t->holds;
    out->waits = t->waits;
    out->wait_start_ns = t->wait_start_ns;
    out->hold_start_ns = t->hold_start_ns;
    for (uint32_t i = 0; i < t->nbuckets; i++) {
        const struct gil_mark_bucket *b = &mk->b[t->first + i];
        if (b->index < HIST_BUCKETS)
            out->hold_hist[b->index] = b->count;
        else
            out->wait_hist[b->index - HIST_BUCKETS] = b->count;
    }
}

/* Entries per batched map read: watch reads every thread's aggregates
 * each second, exited ones included while its window may need them (with
 * 100 thread starts/s, some 1700): one key walk and one 4 KiB lookup each
 * cost a hundred times more syscalls. */
#define MARK_BATCH 64

/* The one-by-one walk, for a kernel without batched hash map reads. */
static void read_mark_walk(int fd, struct gil_mark *mk)
{
    static struct gil_thread_stats st; /* 4 KiB: not on the stack */
    __u32 key, next;
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
        first = false;
        key = next;
        if (bpf_map_lookup_elem(fd, &key, &st) == 0 && !keep_thread(mk, key, &st))
            break;
    }
}

/* Every thread's aggregates now, into mk. */
static void read_mark(struct gil_exact *g, struct gil_mark *mk)
{
    int fd = map_fd(g, "gil_threads");
    static __u32 keys[MARK_BATCH];
    static struct gil_thread_stats vals[MARK_BATCH]; /* 256 KiB: not on the stack */
    mk->set = true;
    mk->ns = (uint64_t)(clock_mono_s() * 1e9);
    mk->n = mk->nb = 0;
    __u32 batch = 0;
    bool first = true;
    for (;;) {
        __u32 count = MARK_BATCH;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int r = bpf_map_lookup_batch(fd, first ? NULL : &batch, &batch, keys, vals, &count, &opts);
        int e = r ? errno : 0;
        if (r && e != ENOENT) {
            /* ENOSPC: a hash bucket holds more than a batch (or no batch
             * support): read it all one by one, from the start. */
            mk->n = mk->nb = 0;
            read_mark_walk(fd, mk);
            return;
        }
        first = false;
        for (__u32 i = 0; i < count; i++)
            if (!keep_thread(mk, keys[i], &vals[i]))
                return;
        if (e == ENOENT)
            return; /* that was the last batch */
    }
}

void gil_exact_mark(struct gil_exact *g, bool end, double at)
{
    if (!g || g->pending || g->failed)
        return;
    struct gil_mark *mk = &g->marks[end ? 1 : 0];
    read_mark(g, mk);
    mk->ns = (uint64_t)(at * 1e9);
    if (!end)
        gil_blame_begin(g);
}

static uint64_t less(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0; /* a torn or reused entry never goes negative */
}

/* The part of an interval open at `at` (started at `since`, 0: none) that
 * lies in the window from start_ns. */
static double open_part(uint64_t since, uint64_t at, uint64_t start_ns)
{
    if (!since || since >= at)
        return 0;
    return (double)(at - (since > start_ns ? since : start_ns));
}

/* What of a completed total precedes the window: the part before start_ns
 * of the interval open then (started at `then`, 0: none), when that
 * interval has ended since (`now` is the one open at the end). */
static uint64_t before_window(uint64_t then, uint64_t now, uint64_t start_ns)
{
    return then && then < start_ns && then != now ? start_ns - then : 0;
}

/* One thread over the window [start_ns, end_ns]: its aggregates at the end
 * less those at the start (b NULL: it had none then), the intervals open
 * at either edge cut there. *held_ns and *wait_ns: its time in each. */
static void window_stats(const struct gil_thread_stats *e, const struct gil_thread_stats *b,
                         uint64_t start_ns, uint64_t end_ns, struct gil_thread_stats *d,
                         double *held_ns, double *wait_ns)
{
    static const struct gil_thread_stats none;
    if (!b)
        b = &none;
    memset(d, 0, sizeof *d);
    d->acquisitions = less(e->acquisitions, b->acquisitions);
    d->wakeups = less(e->wakeups, b->wakeups);
    d->holds = less(e->holds, b->holds);
    d->waits = less(e->waits, b->waits);
    uint32_t top_hold = 0, top_wait = 0;
    for (uint32_t k = 0; k < HIST_BUCKETS; k++) {
        d->hold_hist[k] = e->hold_hist[k] > b->hold_hist[k] ? e->hold_hist[k] - b->hold_hist[k] : 0;
        d->wait_hist[k] = e->wait_hist[k] > b->wait_hist[k] ? e->wait_hist[k] - b->wait_hist[k] : 0;
        top_hold = d->hold_hist[k] ? k : top_hold;
        top_wait = d->wait_hist[k] ? k : top_wait;
    }
    /* An interval open at the start and ended since is in the end's totals
     * whole: the part before the start is not the window's. */
    d->hold_total_ns = less(e->hold_total_ns, b->hold_total_ns +
                                                  before_window(b->hold_start_ns, e->hold_start_ns,
                                                                start_ns));
    d->wait_total_ns = less(e->wait_total_ns, b->wait_total_ns +
                                                  before_window(b->wait_start_ns, e->wait_start_ns,
                                                                start_ns));
    /* A maximum cannot be subtracted: unchanged, it may be from before the
     * window, so no more than the top bucket the window filled. */
    double lo, hi;
    bucket_range(top_hold, &lo, &hi);
    d->hold_max_ns = e->hold_max_ns != b->hold_max_ns || hi > (double)e->hold_max_ns
                         ? e->hold_max_ns : (uint64_t)hi;
    bucket_range(top_wait, &lo, &hi);
    d->wait_max_ns = e->wait_max_ns != b->wait_max_ns || hi > (double)e->wait_max_ns
                         ? e->wait_max_ns : (uint64_t)hi;
    if (!d->holds)
        d->hold_max_ns = 0;
    if (!d->waits)
        d->wait_max_ns = 0;
    /* Intervals still open at the end count toward the shares. */
    *held_ns = (double)d->hold_total_ns + open_part(e->hold_start_ns, end_ns, start_ns);
    *wait_ns = (double)d->wait_total_ns + open_part(e->wait_start_ns, end_ns, start_ns);
}

/* Nothing of the thread between two marks: same counts, nothing open. */
static bool idle_between(const struct gil_mark_thread *b, const struct gil_mark_thread *e)
{
    return !e->hold_start_ns && !e->wait_start_ns && e->acquisitions == b->acquisitions &&
           e->holds == b->holds && e->waits == b->waits && e->hold_total_ns == b->hold_total_ns &&
           e->wait_total_ns == b->wait_total_ns;
}

/* The figures of [base (NULL: the probes' start), fin] into m->exact, with
 * the longest of n candidate long holds (only those that ended in the span
 * when `within`). */
static void collect_between(struct gil_exact *g, const struct gil_mark *base,
                            const struct gil_mark *fin, struct pyrt *rt, struct pyobj_cache *c,
                            struct run_metrics *m, const struct long_hold_event *cand, uint32_t n,
                            bool within)
{
    struct exact_gil *x = &m->exact;
    uint64_t start_ns = base ? base->ns : (uint64_t)(g->t_start * 1e9), end_ns = fin->ns;
    x->window_s = (double)less(end_ns, start_ns) / 1e9;
    x->valid = x->window_s > 0;
    x->probes = g->nlinks + g->multi_probes;
    snprintf(x->mode, sizeof x->mode, "%s", g->mode);
    x->long_hold_threshold_ms = g->threshold_ms;
    x->long_hold_events = g->events;
    struct addrmap at_start; /* tid -> index + 1 in base */
    addrmap_init(&at_start);
    for (size_t i = 0; base && i < base->n; i++)
        addrmap_put(&at_start, base->v[i].tid, (void *)(uintptr_t)(i + 1));
    static uint64_t hold_all[HIST_BUCKETS], wait_all[HIST_BUCKETS];
    memset(hold_all, 0, sizeof hold_all);
    memset(wait_all, 0, sizeof wait_all);
    uint64_t hold_n = 0, hold_total = 0, hold_max = 0, wait_n = 0, wait_total = 0, wait_max = 0;
    double held_ns = 0;
    static struct gil_thread_stats s, e, b; /* 4 KiB each: not on the stack */
    for (size_t i = 0; i < fin->n && x->valid; i++) {
        uintptr_t bi = (uintptr_t)addrmap_get(&at_start, fin->v[i].tid);
        double t_held, t_wait;
        if (bi && idle_between(&base->v[bi - 1], &fin->v[i]))
            continue; /* (most of a churning process's threads: exited) */
        expand(fin, &fin->v[i], &e);
        if (bi)
            expand(base, &base->v[bi - 1], &b);
        window_stats(&e, bi ? &b : NULL, start_ns, end_ns, &s, &t_held, &t_wait);
        if (!s.acquisitions && !s.holds && !s.waits && t_held <= 0 && t_wait <= 0)
            continue; /* nothing of it in the window */
        struct exact_thread *nt = realloc(x->threads, (x->nthreads + 1) * sizeof *nt);
        if (!nt)
            break;
        x->threads = nt;
        struct exact_thread *t = &x->threads[x->nthreads++];
        memset(t, 0, sizeof *t);
        t->tid = (pid_t)fin->v[i].tid;
        t->acquisitions = s.acquisitions;
        t->wakeups = s.wakeups;
        uint64_t h[HIST_BUCKETS], w[HIST_BUCKETS];
        for (uint32_t k = 0; k < HIST_BUCKETS; k++) {
            h[k] = s.hold_hist[k];
            w[k] = s.wait_hist[k];
            hold_all[k] += h[k];
            wait_all[k] += w[k];
        }
        t->waits_long = waits_at_least(w, (double)m->interval_us * 500.0);
        make_dist(&t->hold, h, s.holds, s.hold_total_ns, s.hold_max_ns);
        make_dist(&t->wait, w, s.waits, s.wait_total_ns, s.wait_max_ns);
        t->held_pct = 100.0 * t_held / (x->window_s * 1e9);
        t->wait_pct = 100.0 * t_wait / (x->window_s * 1e9);
        held_ns += t_held;
        hold_n += s.holds;
        hold_total += s.hold_total_ns;
        wait_n += s.waits;
        wait_total += s.wait_total_ns;
        if (s.hold_max_ns > hold_max)
            hold_max = s.hold_max_ns;
        if (s.wait_max_ns > wait_max)
            wait_max = s.wait_max_ns;
        x->acquisitions += s.acquisitions;
    }
    addrmap_free(&at_start);
    if (!x->valid)
        return;
    /* Fallback boundaries are approximate (microseconds apart): keep the
     * total a share of wall time. */
    x->held_pct = 100.0 * held_ns / (x->window_s * 1e9);
    if (x->held_pct > 100.0)
        x->held_pct = 100.0;
    make_dist(&x->hold, hold_all, hold_n, hold_total, hold_max);
    make_dist(&x->wait, wait_all, wait_n, wait_total, wait_max);
    coarse_hist(hold_all, x->hold_le);
    coarse_hist(wait_all, x->wait_le);
    /* Longest holds, longest first, with their stacks resolved now. */
    struct long_hold_event *best = malloc(EXACT_LONGEST * sizeof *best);
    uint32_t nbest = 0;
    for (uint32_t i = 0; i < n && best; i++) {
        const struct long_hold_event *ev = &cand[i];
        if (within && (ev->end_ns < start_ns || ev->end_ns > end_ns))
            continue;
        uint32_t slot = nbest;
        if (nbest == EXACT_LONGEST) {
            slot = 0;
            for (uint32_t k = 1; k < EXACT_LONGEST; k++)
                if (best[k].hold_ns < best[slot].hold_ns)
                    slot = k;
            if (best[slot].hold_ns >= ev->hold_ns)
                continue;
        } else {
            nbest++;
        }
        best[slot] = *ev;
    }
    for (uint32_t i = 0; i < nbest; i++)
        for (uint32_t j = i + 1; j < nbest; j++)
            if (best[j].hold_ns > best[i].hold_ns) {
                struct long_hold_event tmp = best[i];
                best[i] = best[j];
                best[j] = tmp;
            }
    for (uint32_t i = 0; i < nbest; i++) {
        const struct long_hold_event *ev = &best[i];
        struct raw_frame raw[LONG_HOLD_FRAMES];
        struct py_frame frames[LONG_HOLD_FRAMES];
        uint32_t nf = ev->nframes < LONG_HOLD_FRAMES ? ev->nframes : LONG_HOLD_FRAMES;
        for (uint32_t k = 0; k < nf; k++)
            raw[k] = (struct raw_frame){.code = ev->frames[k].code & ~(uint64_t)3,
                                        .pos = ev->frames[k].pos,
                                        .owner = ev->frames[k].owner};
        bool partial = false;
        int nfr = stackwalk_resolve(rt, c, raw, (int)nf, frames, LONG_HOLD_FRAMES, &partial);
        x->longest[x->nlongest++] = (struct exact_long_hold){
            (pid_t)ev->tid, (double)ev->hold_ns / 1e6, stack_table_intern(&m->stacks, frames, nfr)};
    }
    free(best);
}

void gil_exact_collect(struct gil_exact *g, struct pyrt *rt, struct pyobj_cache *c,
                       struct run_metrics *m)
{
    if (!g || g->pending || g->failed)
        return;
    if (g->rb)
        ring_buffer__consume(g->rb);
    /* The sampled window when the sampler marked it; else from the probes'
     * start to now. */
    const struct gil_mark *base = g->marks[0].set ? &g->marks[0] : NULL;
    if (!g->marks[1].set)
        read_mark(g, &g->marks[1]);
    collect_between(g, base, &g->marks[1], rt, c, m, g->longest, g->nlongest, false);
    gil_blame_collect(g, rt, c, m);
}

struct gil_mark *gil_exact_mark_take(struct gil_exact *g)
{
    if (!g || g->pending || g->failed)
        return NULL;
    if (g->rb)
        ring_buffer__consume(g->rb);
    struct gil_mark *mk = calloc(1, sizeof *mk);
    if (mk)
        read_mark(g, mk);
    return mk;
}

void gil_exact_mark_free(struct gil_mark *mk)
{
    if (!mk)
        return;
    free(mk->v);
    free(mk->b);
    free(mk);
}

void gil_exact_forget_dead(struct gil_exact *g, const struct gil_mark *oldest,
                           const struct gil_mark *newest)
{
    if (!g || !oldest || !newest || g->pending || g->failed)
        return;
    int stats_fd = map_fd(g, "gil_threads"), live_fd = map_fd(g, "tstates");
    struct addrmap index; /* tid -> index + 1 in oldest */
    addrmap_init(&index);
    for (size_t i = 0; i < oldest->n; i++)
        addrmap_put(&index, oldest->v[i].tid, (void *)(uintptr_t)(i + 1));
    __u64 ts;
    for (size_t j = 0; j < newest->n; j++) {
        const struct gil_mark_thread *now = &newest->v[j];
        uintptr_t i = (uintptr_t)addrmap_get(&index, now->tid);
        if (!i || now->hold_start_ns || now->wait_start_ns ||
            bpf_map_lookup_elem(live_fd, &now->tid, &ts) == 0)
            continue; /* new since the oldest mark, in the middle of something, or alive */
        /* Gone, nothing since the oldest kept mark: no span of the kept
         * window has anything of it. */
        const struct gil_mark_thread *then = &oldest->v[i - 1];
        if (now->acquisitions == then->acquisitions && now->holds == then->holds &&
            now->waits == then->waits)
            bpf_map_delete_elem(stats_fd, &now->tid);
    }
    addrmap_free(&index);
}


void gil_exact_collect_span(struct gil_exact *g, const struct gil_mark *from,
                            const struct gil_mark *to, struct pyrt *rt, struct pyobj_cache *c,
                            struct run_metrics *m)
{
    if (!g || !from || !to || g->pending || g->failed)
        return;
    /* The latest long holds, oldest first (their order does not matter:
     * the longest are picked). */
    collect_between(g, from, to, rt, c, m, g->recent, g->nrecent, true);
}

void gil_exact_clear(struct run_metrics *m)
{
    metrics_exact_threads_free(&m->exact);
    memset(&m->exact, 0, sizeof m->exact);
}

void gil_exact_stop(struct gil_exact *g)
{
    if (!g)
        return;
    ring_buffer__free(g->rb);
    free(g->marks[0].v);
    free(g->marks[0].b);
    free(g->marks[1].v);
    free(g->marks[1].b);
    links_destroy_all(g->links, (size_t)g->nlinks, g->multi_fds, (size_t)g->nmulti);
    gil_bpf__destroy(g->uprobes);
    gil_futex_destroy(g);
    addrmap_free(&g->registered);
    free(g->blame_base);
    free(g);
}

#endif
