// SPDX-License-Identifier: GPL-2.0
/* GIL hold and wait times where take_gil/drop_gil cannot be probed (a
 * stripped runtime that inlined them): a GIL wait is a run of futex waits
 * on an address inside the GIL struct (raw syscall tracepoints, filtered
 * here by process and address range); a hold starts when such a run ends
 * or PyEval_RestoreThread returns, and ends when PyEval_SaveThread is
 * entered or the next run of GIL futex waits begins. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "gil_common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
const volatile __u64 gil_start = 0, gil_end = 0;
const volatile __u64 gil_last_holder = 0; /* address of gil->last_holder */

#define NR_FUTEX 202
/* Futex waits closer together than this belong to one take_gil (a timed
 * wait that expired, a drop request set, the next wait). */
#define MERGE_GAP_NS 200000

/* Per thread: inside a GIL futex wait now, and the current run of them. */
struct run_state {
    __u64 in_futex;   /* 1 while inside a GIL futex syscall */
    __u64 run_start;  /* first futex wait of the run (0: no run) */
    __u64 run_last;   /* last futex exit of the run */
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 32768);
    __type(key, __u32);
    __type(value, struct run_state);
} runs SEC(".maps");

static __always_inline bool ours(void)
{
    return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

/* Whether tid took the GIL since its last futex wait ended: a thread that
 * held it is still its last holder when it next waits (drop_gil records
 * itself there); one that woke up without it is not. Unknown thread
 * states count as yes (the time gap alone decides then). */
static __always_inline bool got_gil_since(__u32 tid)
{
    __u64 *ts = bpf_map_lookup_elem(&tstates, &tid);
    if (!ts || !gil_last_holder)
        return true;
    return read_u64(gil_last_holder) == *ts;
}

/* Closes a finished run of waits: it was one GIL wait, and the hold that
 * followed it began when it ended. */
static __always_inline void close_run(struct run_state *r, struct gil_thread_stats *s)
{
    if (!r->run_start)
        return;
    /* A run closed before its first futex exit has no end yet: not a
     * negative (huge unsigned) wait. */
    record_wait(s, r->run_last > r->run_start ? r->run_last - r->run_start : 0);
    s->acquisitions++;
    s->hold_start_ns = r->run_last;
    r->run_start = 0;
}

SEC("raw_tp/sys_enter")
int gp_futex_enter(struct bpf_raw_tracepoint_args *ctx)
{
    if (!ours() || ctx->args[1] != NR_FUTEX)
        return 0;
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    __u64 uaddr = BPF_CORE_READ(regs, di);
    if (uaddr < gil_start || uaddr >= gil_end)
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = stats_for(tid);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    struct run_state *r = bpf_map_lookup_elem(&runs, &tid);
    if (!r) {
        struct run_state z = {};
        bpf_map_update_elem(&runs, &tid, &z, BPF_NOEXIST);
        r = bpf_map_lookup_elem(&runs, &tid);
        if (!r)
            return 0;
    }
    if (r->run_start && (now - r->run_last < MERGE_GAP_NS || !got_gil_since(tid))) {
        r->in_futex = 1; /* the same wait goes on */
        return 0;
    }
    close_run(r, s);
    end_hold(tid, s, now); /* it had the GIL and is now waiting for it */
    r->run_start = now;
    r->run_last = now;
    r->in_futex = 1;
    return 0;
}

SEC("raw_tp/sys_exit")
int gp_futex_exit(struct bpf_raw_tracepoint_args *ctx)
{
    if (!ours())
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct run_state *r = bpf_map_lookup_elem(&runs, &tid);
    if (!r || !r->in_futex)
        return 0;
    r->in_futex = 0;
    r->run_last = bpf_ktime_get_ns();
    return 0;
}

/* PyEval_SaveThread: the thread releases the GIL around a blocking call. */
SEC("uprobe")
int gp_save_thread(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = stats_for(tid);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    struct run_state *r = bpf_map_lookup_elem(&runs, &tid);
    if (r)
        close_run(r, s);
    end_hold(tid, s, now);
    return 0;
}

/* PyEval_RestoreThread returned: the thread holds the GIL again. */
SEC("uretprobe")
int gp_restore_thread(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = stats_for(tid);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    struct run_state *r = bpf_map_lookup_elem(&runs, &tid);
    if (r && r->run_start) {
        /* It waited inside RestoreThread: that wait ends now. */
        r->run_last = now;
        close_run(r, s);
    } else {
        s->acquisitions++;
    }
    s->hold_start_ns = now;
    return 0;
}
