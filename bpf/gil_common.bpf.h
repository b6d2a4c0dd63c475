/* Shared by the GIL BPF programs (gil.bpf.c: uprobes on take_gil/drop_gil;
 * gil_futex.bpf.c: the fallback for runtimes without those symbols):
 * per-thread aggregates and histograms, long holds with their stacks. */
#ifndef GILPROBE_GIL_COMMON_BPF_H
#define GILPROBE_GIL_COMMON_BPF_H

#include "ebpf/gil_shared.h"

const volatile __u64 long_hold_ns = 5000000;
const volatile struct gil_bpf_layout layout = {};

/* Entries allocated as threads come, not all at the start: preallocated,
 * this map alone took 134 MB of kernel memory (32768 x 4 KiB) at every
 * attach, and its creation 4-11 s on a busy VM. Read whole every second
 * (watch): a batch read walks every bucket, and its bucket count is
 * max_entries, so 8192 (a thread's entry goes when it exits) rather than
 * 32768: 0.24% of a core for that walk at 32768, measured. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u32);
    __type(value, struct gil_thread_stats);
} gil_threads SEC(".maps");

/* tid -> its PyThreadState, filled by user space (8192 buckets: see
 * gil_threads; its walks drop the gone threads). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __uint(map_flags, BPF_F_NO_PREALLOC); /* see gil_threads */
    __type(key, __u32);
    __type(value, __u64);
} tstates SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} long_holds SEC(".maps");

/* Scratch for a new entry (too big for the BPF stack). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct gil_thread_stats);
} zero SEC(".maps");

/* Index of the highest set bit (BPF has no count-leading-zeros). */
static __always_inline __u32 msb64(__u64 v)
{
    __u32 r = 0;
    if (v >> 32) { v >>= 32; r += 32; }
    if (v >> 16) { v >>= 16; r += 16; }
    if (v >> 8) { v >>= 8; r += 8; }
    if (v >> 4) { v >>= 4; r += 4; }
    if (v >> 2) { v >>= 2; r += 2; }
    if (v >> 1) { r += 1; }
    return r;
}

static __always_inline __u32 bucket(__u64 ns)
{
    if (ns < (1ULL << HIST_MIN_SHIFT))
        return 0;
    __u32 msb = msb64(ns);
    if (msb > HIST_MAX_SHIFT)
        return HIST_BUCKETS - 1;
    __u32 sub = (__u32)(ns >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1);
    __u32 b = (msb - HIST_MIN_SHIFT) * HIST_SUB + sub;
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

static __always_inline struct gil_thread_stats *stats_for(__u32 tid)
{
    struct gil_thread_stats *s = bpf_map_lookup_elem(&gil_threads, &tid);
    if (s)
        return s;
    __u32 k = 0;
    struct gil_thread_stats *z = bpf_map_lookup_elem(&zero, &k);
    if (!z)
        return 0;
    bpf_map_update_elem(&gil_threads, &tid, z, BPF_NOEXIST);
    return bpf_map_lookup_elem(&gil_threads, &tid);
}

static __always_inline __u64 read_u64(__u64 addr)
{
    __u64 v = 0;
    bpf_probe_read_user(&v, sizeof v, (void *)addr);
    return v;
}

/* The raw Python frames of `tid` (running now, in its own context). */
static __always_inline void capture_stack(__u32 tid, struct long_hold_event *ev)
{
    __u64 *ts = bpf_map_lookup_elem(&tstates, &tid);
    ev->nframes = 0;
    if (!ts)
        return;
    __u64 frame = read_u64(*ts + layout.root_off);
    if (layout.frame_model == 1 && frame) /* 3.11/3.12: _PyCFrame hop */
        frame = read_u64(frame + layout.cframe_current_frame);
    for (int i = 0; i < LONG_HOLD_FRAMES && frame; i++) {
        struct raw_frame_ev *f = &ev->frames[i];
        f->code = read_u64(frame + layout.frame_code);
        if (layout.pos_is_int) {
            __s32 lasti = 0;
            bpf_probe_read_user(&lasti, sizeof lasti, (void *)(frame + layout.frame_pos));
            f->pos = (__u64)(__s64)lasti;
        } else {
            f->pos = read_u64(frame + layout.frame_pos);
        }
        f->owner = 0;
        if (layout.frame_owner >= 0)
            bpf_probe_read_user(&f->owner, 1, (void *)(frame + layout.frame_owner));
        ev->nframes = i + 1;
        frame = read_u64(frame + layout.frame_prev);
    }
}

/* GIL blame (gil_shared.h): on only where a one-shot report wants it. */
const volatile bool blame_on = false;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, BLAME_HOLD_RING);
    __type(key, __u32);
    __type(value, struct blame_hold);
} blame_holds SEC(".maps");

/* Entries allocated as pairs appear (most runs have a few dozen). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BLAME_PAIRS);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct blame_key);
    __type(value, struct blame_val);
} blame_pairs SEC(".maps");

__u64 blame_seq = 0;  /* holds recorded so far */
__u64 blame_lost = 0; /* overlaps not counted: the pair map was full */

/* The innermost Python function of tid (0: unknown): its top frame's code
 * object, past C-stack shim frames. */
static __always_inline __u64 top_code(__u32 tid)
{
    __u64 *ts = bpf_map_lookup_elem(&tstates, &tid);
    if (!ts)
        return 0;
    __u64 frame = read_u64(*ts + layout.root_off);
    if (layout.frame_model == 1 && frame) /* 3.11/3.12: _PyCFrame hop */
        frame = read_u64(frame + layout.cframe_current_frame);
    for (int i = 0; i < 3 && frame; i++) {
        if (layout.frame_owner >= 0 && layout.owner_cstack >= 0) {
            __u8 owner = 0;
            bpf_probe_read_user(&owner, 1, (void *)(frame + layout.frame_owner));
            if (owner >= layout.owner_cstack) {
                frame = read_u64(frame + layout.frame_prev);
                continue;
            }
        }
        return read_u64(frame + layout.frame_code) & ~(__u64)3;
    }
    return 0;
}

/* A hold of tid over [start, end] ends: into the ring. */
static __always_inline void blame_note_hold(__u32 tid, __u64 start, __u64 end)
{
    if (!blame_on)
        return;
    __u32 slot = (__u32)__sync_fetch_and_add(&blame_seq, 1) & (BLAME_HOLD_RING - 1);
    struct blame_hold *h = bpf_map_lookup_elem(&blame_holds, &slot);
    if (!h)
        return;
    h->tid = tid;
    h->start = start;
    h->end = end;
    h->code = top_code(tid);
}

/* One wait's walk back over the ring (bpf_loop: the verifier checks the
 * step once, not BLAME_WALK times). */
struct blame_walk {
    __u64 seq, ws, we;
    __u32 waiter;
    int before;
};

static int blame_step(__u32 index, void *ctx)
{
    struct blame_walk *w = ctx;
    if (!w->seq || w->before >= 4)
        return 1;
    w->seq--;
    __u32 slot = (__u32)w->seq & (BLAME_HOLD_RING - 1);
    struct blame_hold *h = bpf_map_lookup_elem(&blame_holds, &slot);
    if (!h)
        return 1;
    if (h->end <= w->ws) {
        w->before++;
        return 0;
    }
    __u64 a = h->start > w->ws ? h->start : w->ws, b = h->end < w->we ? h->end : w->we;
    if (b <= a || h->tid == w->waiter)
        return 0;
    struct blame_key k = {.waiter = w->waiter, .holder = h->tid, .code = h->code};
    struct blame_val *v = bpf_map_lookup_elem(&blame_pairs, &k);
    if (!v) {
        struct blame_val z = {};
        bpf_map_update_elem(&blame_pairs, &k, &z, BPF_NOEXIST);
        v = bpf_map_lookup_elem(&blame_pairs, &k);
        if (!v) {
            __sync_fetch_and_add(&blame_lost, 1);
            return 0;
        }
    }
    __sync_fetch_and_add(&v->ns, b - a);
    __sync_fetch_and_add(&v->n, 1);
    return 0;
}

/* waiter waited for the GIL over [ws, we]: each recorded hold it
 * overlapped is charged the overlap. Holds end in order, so the walk stops
 * at the holds that ended before the wait began (a few in a row: the
 * futex fallback may record a hold a moment late). */
static __always_inline void blame_wait(__u32 waiter, __u64 ws, __u64 we)
{
    if (!blame_on || we <= ws)
        return;
    struct blame_walk w = {.seq = blame_seq, .ws = ws, .we = we, .waiter = waiter};
    bpf_loop(BLAME_WALK, blame_step, &w, 0);
}

static __always_inline void record_wait(struct gil_thread_stats *s, __u64 w)
{
    s->waits++;
    s->wait_total_ns += w;
    if (w > s->wait_max_ns)
        s->wait_max_ns = w;
    __u32 b = bucket(w);
    if (b < HIST_BUCKETS)
        s->wait_hist[b]++;
}

/* Ends the current hold of tid at `now` (if one was seen starting). */
static __always_inline void end_hold(__u32 tid, struct gil_thread_stats *s, __u64 now)
{
    if (!s->hold_start_ns)
        return; /* a release whose acquisition was not seen */
    __u64 h = now - s->hold_start_ns;
    blame_note_hold(tid, s->hold_start_ns, now);
    s->hold_start_ns = 0;
    s->holds++;
    s->hold_total_ns += h;
    if (h > s->hold_max_ns)
        s->hold_max_ns = h;
    __u32 b = bucket(h);
    if (b < HIST_BUCKETS)
        s->hold_hist[b]++;
    if (h >= long_hold_ns) {
        struct long_hold_event *ev = bpf_ringbuf_reserve(&long_holds, sizeof *ev, 0);
        if (ev) {
            ev->tid = tid;
            ev->hold_ns = h;
            ev->end_ns = now;
            capture_stack(tid, ev);
            bpf_ringbuf_submit(ev, 0);
        }
    }
}

#endif
