// SPDX-License-Identifier: GPL-2.0
/* GIL hold and wait times where take_gil/drop_gil cannot be probed (a
 * stripped runtime that inlined them): a GIL wait is a run of futex waits
 * on an address inside the GIL struct (raw syscall tracepoints, filtered
 * here by process and address range); a hold starts when such a run ends
 * or PyEval_RestoreThread / PyEval_AcquireThread (a new thread's first
 * take) returns, and ends when PyEval_SaveThread / PyEval_ReleaseThread is
 * entered, when drop_gil signals the GIL's waiters, when
 * PyThreadState_DeleteCurrent (a thread's last release) returns, when the
 * next run of GIL futex waits begins, or when the thread exits (the
 * sched_process_exit tracepoint: whatever an exiting thread held or waited
 * for ends there, whichever path it left by). */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "gil_common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
/* Where the GIL is: set after the load, before the attach. A program that
 * `gilprobe run` just started has not created its GIL when the program
 * must be loaded (the verifier takes 100-300 ms: loading then would let
 * the program run unsampled that long), so these live in .bss, not in
 * .rodata. Zero until set: nothing matches. */
volatile __u64 gil_start = 0, gil_end = 0;
volatile __u64 gil_last_holder = 0; /* address of gil->last_holder */
volatile __u64 gil_locked = 0;      /* address of gil->locked */

#define NR_FUTEX 202
/* Futex waits closer together than this belong to one take_gil (a timed
 * wait that expired, a drop request set, the next wait). */
#define MERGE_GAP_NS 200000

/* Per thread: inside a GIL futex wait now, and the current run of them. */
struct run_state {
    __u64 in_futex;   /* 1 while inside a GIL futex syscall */
    __u64 run_start;  /* first futex wait of the run (0: no run) */
    __u64 run_last;   /* last futex exit of the run */
    __u64 released;   /* when it last gave the GIL up */
    __u64 dropping;   /* 1: inside drop_gil, the GIL already counted as given up */
};

/* When any thread of the target last gave the GIL up: a thread that takes
 * it back unseen (no wait, no signal) cannot have had it before then. */
__u64 last_release_any = 0;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 32768);
    __uint(map_flags, BPF_F_NO_PREALLOC); /* see gil_threads */
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

/* Whether the GIL is locked now: 1, 0, or -1 when it cannot be read. */
static __always_inline int gil_locked_now(void)
{
    __u32 locked = 0;
    if (!gil_locked || bpf_probe_read_user(&locked, sizeof locked, (void *)gil_locked) != 0)
        return -1;
    return locked != 0;
}

/* Whether tid holds the GIL now, from the GIL itself: locked, with its
 * thread state as the last holder; -1 when its thread state is unknown. */
static __always_inline int holds_gil_now(__u32 tid)
{
    __u64 *ts = bpf_map_lookup_elem(&tstates, &tid);
    if (!ts || !gil_last_holder || !gil_locked)
        return -1;
    __u32 locked = 0;
    bpf_probe_read_user(&locked, sizeof locked, (void *)gil_locked);
    return locked && read_u64(gil_last_holder) == *ts;
}

static __always_inline struct run_state *run_for(__u32 tid)
{
    struct run_state *r = bpf_map_lookup_elem(&runs, &tid);
    if (r)
        return r;
    struct run_state z = {};
    bpf_map_update_elem(&runs, &tid, &z, BPF_NOEXIST);
    return bpf_map_lookup_elem(&runs, &tid);
}

/* The thread that opened the latest hold (0: none known). */
__u32 holder_tid = 0;

/* tid's hold opens at `since`: one GIL has one holder, so a hold another
 * thread still has open was given up unseen before then (a release the
 * probes missed, or a thread state's address reused by another thread
 * making a sleeping thread look like the holder: a 10 s phantom hold of a
 * main thread, in CPython 3.15's own threading tests under load, while
 * other threads took the GIL hundreds of times). */
static __always_inline void open_hold(__u32 tid, struct gil_thread_stats *s, __u64 since)
{
    __u32 prev = holder_tid;
    if (prev && prev != tid) {
        struct gil_thread_stats *p = bpf_map_lookup_elem(&gil_threads, &prev);
        if (p && p->hold_start_ns && p->hold_start_ns < since)
            end_hold(prev, p, since);
    }
    holder_tid = tid;
    s->hold_start_ns = since;
}

/* The thread gives the GIL up now. */
static __always_inline void release_now(__u32 tid, struct gil_thread_stats *s,
                                        struct run_state *r, __u64 now)
{
    if (!s->hold_start_ns)
        return;
    end_hold(tid, s, now);
    if (r)
        r->released = now;
    last_release_any = now;
}

/* The thread holds the GIL now, with neither a hold nor a wait open: it
 * took the GIL back unseen - after a forced drop, take_gil finds it free
 * and neither waits nor signals. It did so after its own last release and
 * after anyone's last release. */
static __always_inline void retaken_unseen(struct gil_thread_stats *s, struct run_state *r,
                                           __u64 now)
{
    if (r)
        r->dropping = 0;
    if (s->hold_start_ns || (r && r->run_start))
        return;
    __u64 since = r && r->released ? r->released : now;
    if (last_release_any > since && last_release_any < now)
        since = last_release_any;
    s->acquisitions++;
    open_hold((__u32)bpf_get_current_pid_tgid(), s, since);
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
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    open_hold(tid, s, r->run_last); /* ends the previous holder's hold first */
    if (r->run_last > r->run_start)
        blame_wait(tid, r->run_start, r->run_last);
    r->run_start = 0;
}

/* A thread signals one of the GIL's condition variables: right after
 * taking the GIL (take_gil wakes a dropper waiting for the switch) or
 * right after giving it up (drop_gil wakes the waiters, `locked` already
 * 0). Taking it: the wait that brought it here is over and the hold is
 * open from the end of that wait. Giving it up: the hold ends now - its
 * next wait may come after another thread took the GIL, when the last
 * holder no longer says that this one held it in between. */
static __always_inline void gil_signal(__u32 tid)
{
    struct gil_thread_stats *s = bpf_map_lookup_elem(&gil_threads, &tid);
    struct run_state *r = run_for(tid);
    if (!s || !r)
        return;
    __u64 now = bpf_ktime_get_ns();
    int holds = holds_gil_now(tid);
    if (holds < 0)
        return; /* whose signal it is cannot be told */
    if (holds) {
        if (r->run_start && !r->in_futex)
            close_run(r, s);
        else
            retaken_unseen(s, r, now);
        return;
    }
    if (r->dropping)
        return; /* drop_gil's next wake-up (its mutex unlocked, after the
                 * signal): the release is counted already, no new take */
    if (!got_gil_since(tid))
        return; /* a waiter that never got it, e.g. signalling on a timeout */
    if (r->run_start)
        close_run(r, s);
    else
        retaken_unseen(s, r, now);
    release_now(tid, s, r, now);
    /* Until its next other event, this thread is finishing drop_gil. Its
     * mutex unlock may wake a thread too (a second FUTEX_WAKE): taken for
     * an unseen re-take, every contended drop added a hold of a few
     * microseconds - as many phantom holds as real ones on four CPU-bound
     * threads. */
    r->dropping = 1;
}

/* A release the probes did not see: an optimising build may inline
 * PyEval_SaveThread or PyEval_ReleaseThread into some of their callers
 * (Debian's LTO 3.14 inlines the release before every PyMutex wait). A
 * thread with a hold open that enters any other syscall while the GIL is
 * not its own released it before; its hold ends there, not at its next
 * probed event (which would count the whole blocking call as held). */
static __always_inline void check_unseen_release(__u32 tid)
{
    struct gil_thread_stats *s = bpf_map_lookup_elem(&gil_threads, &tid);
    if (!s)
        return;
    struct run_state *r = bpf_map_lookup_elem(&runs, &tid);
    if (r)
        r->dropping = 0; /* drop_gil makes no other syscall */
    int holds = holds_gil_now(tid);
    /* A GIL nobody holds is not its own, whether its thread state is
     * known or not (a main thread whose state the map lacked kept a hold
     * open through a 10 s wait, in CPython 3.15's threading tests). Only
     * to end a hold: opening one needs the thread state. */
    if (holds < 0 && gil_locked_now() == 0)
        holds = 0;
    if (holds == 0 && s->hold_start_ns)
        release_now(tid, s, r, bpf_ktime_get_ns());
    else if (holds == 1 && r && r->run_start && !r->in_futex)
        /* Its wait is over and the GIL is its own: taken at the end of
         * that wait. Left open until a later futex event confirmed it
         * (got_gil_since), a thread that got the GIL and ran without
         * another GIL futex call - Debian's 3.14 under load, threads that
         * burn CPU until they exit - had its whole hold counted as a wait
         * (exact held 50-63% vs sampled 77-81% under two CPU hogs). */
        close_run(r, s);
    else if (holds == 1 && !s->hold_start_ns && r && !r->run_start)
        retaken_unseen(s, r, bpf_ktime_get_ns()); /* see retaken_unseen */
}

SEC("raw_tp/sys_enter")
int gp_futex_enter(struct bpf_raw_tracepoint_args *ctx)
{
    if (!ours())
        return 0;
    __u32 caller = (__u32)bpf_get_current_pid_tgid();
    if (ctx->args[1] != NR_FUTEX) {
        check_unseen_release(caller);
        return 0;
    }
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    __u64 uaddr = BPF_CORE_READ(regs, di);
    if (uaddr < gil_start || uaddr >= gil_end) {
        check_unseen_release(caller);
        return 0;
    }
    /* Waits are FUTEX_WAIT and FUTEX_WAIT_BITSET (whatever the private and
     * clock flags); anything else - the FUTEX_WAKEs of a thread signalling
     * the GIL's condition variables - is no wait (counted as one, a
     * release ended holds early and began a phantom wait lasting until the
     * thread's next probed event), but tells where the thread stands. */
    __u64 op = BPF_CORE_READ(regs, si) & 127;
    if (op != 0 && op != 9) {
        gil_signal(caller);
        return 0;
    }
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = stats_for(tid);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    struct run_state *r = run_for(tid);
    if (!r)
        return 0;
    if (r->run_start && (now - r->run_last < MERGE_GAP_NS || !got_gil_since(tid))) {
        r->in_futex = 1; /* the same wait goes on */
        return 0;
    }
    if (!r->run_start && holds_gil_now(tid) == 1) {
        /* Holding the GIL and waiting on its mutex: drop_gil, before it
         * sets `locked` to 0. The GIL is being given up (where the probes
         * on drop_gil end a hold): the hold ends here, but this is no wait
         * for the GIL, and its signal once the mutex is got is no new
         * take (counted as one, each contended drop made a hold of a few
         * microseconds: half the holds of four CPU-bound threads). */
        retaken_unseen(s, r, now);
        release_now(tid, s, r, now);
        r->dropping = 1;
        return 0;
    }
    /* Straight from drop_gil to a wait (no other event between): a forced
     * switch, after which the thread asks for the GIL back at once. It has
     * waited since it gave it up, as the probes on take_gil count it -
     * under CPU pressure the dropper loses its CPU to the thread it woke
     * and reaches this wait milliseconds later (each of four CPU-bound
     * threads was 8 points of wait short without this). */
    __u64 since = r->dropping && r->released ? r->released : now;
    r->dropping = 0;
    if (r->run_start)
        close_run(r, s);
    release_now(tid, s, r, now); /* it had the GIL and is now waiting for it */
    r->run_start = since;
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
    if (!r)
        return 0;
    if (!r->in_futex) {
        /* Out of a syscall it made without the GIL: it had no GIL until
         * now at least, so a later unseen re-take (retaken_unseen) starts
         * here, not at its release before the call - counted from there,
         * a main thread's 2 s blocking read of a pipe after an LTO-inlined
         * release was all held (exact 99.8% vs sampled 20%, on Debian's
         * 3.15). drop_gil's own wake-ups keep the release time. */
        struct gil_thread_stats *s = bpf_map_lookup_elem(&gil_threads, &tid);
        if (s && !s->hold_start_ns && !r->run_start && !r->dropping && r->released)
            r->released = bpf_ktime_get_ns();
        return 0;
    }
    r->in_futex = 0;
    r->run_last = bpf_ktime_get_ns();
    return 0;
}

/* PyEval_SaveThread, PyEval_ReleaseThread: the thread releases the GIL
 * (around a blocking call, or for good). */
SEC("uprobe")
int gp_save_thread(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = stats_for(tid);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    struct run_state *r = run_for(tid);
    if (!r)
        return 0;
    /* It holds the GIL until now, however it got it. */
    if (r->run_start)
        close_run(r, s);
    else
        retaken_unseen(s, r, now);
    release_now(tid, s, r, now);
    return 0;
}

/* (_)PyThreadState_DeleteCurrent returned: the thread gave the GIL up for
 * good inside it (drop_gil's signal, when it had waiters, already ended
 * the hold; a phantom re-take must not open one). */
SEC("uretprobe")
int gp_thread_deleted(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = bpf_map_lookup_elem(&gil_threads, &tid);
    if (!s)
        return 0;
    struct run_state *r = bpf_map_lookup_elem(&runs, &tid);
    if (r) {
        r->dropping = 0;
        if (r->run_start) {
            /* Waited for the GIL inside the deletion, then gave it up. */
            close_run(r, s);
        }
    }
    release_now(tid, s, r, bpf_ktime_get_ns());
    return 0;
}

/* PyEval_RestoreThread(tstate) or PyEval_AcquireThread(tstate) entered:
 * the thread's own state, known from its first take on (user space fills
 * the same map only every thread-list refresh: a new thread would be
 * missing from it until then, and got_gil_since would guess). */
SEC("uprobe")
int gp_learn_tstate(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 ts = PT_REGS_PARM1(ctx);
    if (ts)
        bpf_map_update_elem(&tstates, &tid, &ts, BPF_ANY);
    /* About to take the GIL: whatever hold is still open was released
     * unseen (see check_unseen_release) before here. */
    struct gil_thread_stats *s = bpf_map_lookup_elem(&gil_threads, &tid);
    if (s && s->hold_start_ns)
        end_hold(tid, s, bpf_ktime_get_ns());
    return 0;
}

/* PyEval_RestoreThread or PyEval_AcquireThread returned: the thread holds
 * the GIL (again). */
SEC("uretprobe")
int gp_restore_thread(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = stats_for(tid);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    struct run_state *r = bpf_map_lookup_elem(&runs, &tid);
    if (r)
        r->dropping = 0;
    s->wakeups++;
    if (r && r->run_start) {
        /* It waited inside RestoreThread: that wait ends now. */
        r->run_last = now;
        close_run(r, s);
    } else {
        s->acquisitions++;
    }
    open_hold(tid, s, now);
    return 0;
}

/* A thread of the target exits: whatever it held or waited for ends now
 * (a thread's last release does not always pass a probed function, and a
 * hold left open would count until the end of the run). */
SEC("raw_tp/sched_process_exit")
int gp_thread_exit(struct bpf_raw_tracepoint_args *ctx)
{
    if (!ours())
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = bpf_map_lookup_elem(&gil_threads, &tid);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    struct run_state *r = bpf_map_lookup_elem(&runs, &tid);
    if (r && r->run_start) {
        /* Died waiting (a daemon thread at exit): the wait ends here, and
         * no hold follows it. */
        r->run_last = now;
        close_run(r, s);
        s->acquisitions--;
        s->hold_start_ns = 0;
    }
    end_hold(tid, s, now);
    if (r)
        bpf_map_delete_elem(&runs, &tid);
    return 0;
}
