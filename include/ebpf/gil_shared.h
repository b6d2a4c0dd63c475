/* Types shared by bpf/gil.bpf.c and user space: per-thread GIL hold/wait
 * aggregates kept in the kernel, and the event a long hold produces. */
#ifndef GILPROBE_GIL_BPF_H
#define GILPROBE_GIL_BPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Log-linear histogram of nanoseconds: 16 linear steps per power of two,
 * from 2^HIST_MIN_SHIFT ns (values below land in bucket 0) up; ~6%
 * resolution, enough to tell a 10 ms hold from a 14 ms one. */
#define HIST_SUB_BITS 4
#define HIST_SUB (1 << HIST_SUB_BITS)
#define HIST_MIN_SHIFT 10 /* 1 us */
#define HIST_MAX_SHIFT 40 /* ~18 min; longer values land in the last bucket */
#define HIST_BUCKETS ((HIST_MAX_SHIFT - HIST_MIN_SHIFT + 1) * HIST_SUB)

struct gil_thread_stats {
    __u64 acquisitions;
    __u64 hold_total_ns, hold_max_ns;
    __u64 wait_total_ns, wait_max_ns;
    __u64 holds, waits;     /* completed intervals */
    /* Times it came back for the GIL through the API: take_gil returns
     * (probes on it), PyEval_RestoreThread/AcquireThread returns (the
     * fallback, which cannot see a take that found the GIL free as a
     * wait). The convoy's wake-ups. */
    __u64 wakeups;
    __u64 wait_start_ns;    /* in take_gil since (0: not) */
    __u64 hold_start_ns;    /* holding since (0: not, or not seen taking it) */
    __u64 drop_start_ns;    /* entered drop_gil at */
    __u64 drop_end_ns;      /* returned from drop_gil at */
    __u32 hold_hist[HIST_BUCKETS];
    __u32 wait_hist[HIST_BUCKETS];
};

#define LONG_HOLD_FRAMES 32

struct raw_frame_ev {
    __u64 code, pos;
    __u8 owner;
};

struct long_hold_event {
    __u32 tid;
    __u32 nframes;
    __u64 hold_ns;
    __u64 end_ns;
    struct raw_frame_ev frames[LONG_HOLD_FRAMES];
};

/* What the BPF side needs of the layout to walk a stack (rodata). */
struct gil_bpf_layout {
    __s32 frame_model;          /* enum frame_model */
    __s32 root_off;             /* tstate -> frame / cframe / current_frame */
    __s32 cframe_current_frame;
    __s32 frame_code, frame_pos, frame_prev, frame_owner; /* owner -1: none */
    __s32 pos_is_int;           /* f_lasti (int) rather than a pointer */
    __s32 owner_cstack;         /* owner >= this: a C-stack shim frame (-1: none) */
};

/* GIL blame in the kernel: each hold that ends is recorded in a ring
 * (holds end one at a time: the GIL serialises them), and a wait that
 * ends walks the ring back over the holds it overlapped, adding each
 * overlap to the (waiter, holder, holder's function) pair. */
#define BLAME_HOLD_RING 512 /* a power of two */
#define BLAME_WALK 64       /* holds one wait is joined with, at most */
#define BLAME_PAIRS 16384

struct blame_hold {
    __u64 start, end;
    __u64 code; /* the holder's innermost Python function (tag bits cleared) */
    __u32 tid;
    __u32 pad;
};

struct blame_key {
    __u32 waiter, holder;
    __u64 code;
};

struct blame_val {
    __u64 ns, n;
};

#endif
