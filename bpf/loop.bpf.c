// SPDX-License-Identifier: GPL-2.0
/* Exact event-loop stalls: for every thread of one process, the time from
 * leaving a selector wait (epoll_wait/epoll_pwait/epoll_pwait2/select/
 * pselect6/poll/ppoll with descriptors) to entering the next one that may
 * block; those at least stall_ns long go to user space. select/poll on no
 * descriptors is a sleep (time.sleep <= 3.10), not a selector.
 *
 * A call with a zero timeout is a poll, not a wait: asyncio (and libuv)
 * make one between iterations while callbacks are ready, and a stall runs
 * on through it. What a coroutine woken during a busy stretch waits for is
 * every callback queued before it (the ready queue is FIFO): the loop
 * drains it exactly when it next may block. The sampler sees the same (a
 * poll takes microseconds), so both modes count one stall where several
 * callbacks run back to back. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "ebpf/loop_shared.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
const volatile __u64 stall_ns = 100000000;

struct selector_state {
    __u64 in_wait;   /* inside a selector wait */
    __u64 left_at;   /* when it last left one (0: never seen) */
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 32768);
    __uint(map_flags, BPF_F_NO_PREALLOC); /* see gil_threads */
    __type(key, __u32);
    __type(value, struct selector_state);
} selectors SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 18);
} stalls SEC(".maps");

static __always_inline bool is_selector_wait(long nr, struct pt_regs *regs)
{
    switch (nr) {
    case 232: /* epoll_wait */
    case 281: /* epoll_pwait */
    case 441: /* epoll_pwait2 */
        return true;
    case 23:  /* select */
    case 270: /* pselect6 */
        return BPF_CORE_READ(regs, di) != 0;
    case 7:   /* poll */
    case 271: /* ppoll */
        return BPF_CORE_READ(regs, si) != 0;
    default:
        return false;
    }
}

/* A timespec (or timeval: both two longs) at user address p of zero. */
static __always_inline bool zero_time(__u64 p)
{
    long t[2] = {1, 1};
    if (!p || bpf_probe_read_user(t, sizeof t, (void *)p) != 0)
        return false; /* NULL: no timeout at all; unreadable: assume a wait */
    return t[0] == 0 && t[1] == 0;
}

/* A selector call that cannot block: a zero timeout. */
static __always_inline bool is_poll(long nr, struct pt_regs *regs)
{
    switch (nr) {
    case 232: /* epoll_wait(epfd, events, maxevents, int timeout_ms) */
    case 281: /* epoll_pwait: the same, then a sigmask */
        return (int)BPF_CORE_READ(regs, r10) == 0;
    case 441: /* epoll_pwait2(..., struct __kernel_timespec *timeout, ...) */
        return zero_time(BPF_CORE_READ(regs, r10));
    case 23:  /* select(n, r, w, e, struct timeval *timeout) */
    case 270: /* pselect6(n, r, w, e, struct timespec *timeout, ...) */
        return zero_time(BPF_CORE_READ(regs, r8));
    case 7:   /* poll(fds, nfds, int timeout_ms) */
        return (int)BPF_CORE_READ(regs, dx) == 0;
    case 271: /* ppoll(fds, nfds, struct timespec *timeout, ...) */
        return zero_time(BPF_CORE_READ(regs, dx));
    default:
        return false;
    }
}

SEC("raw_tp/sys_enter")
int gp_loop_enter(struct bpf_raw_tracepoint_args *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
        return 0;
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    long nr = (long)ctx->args[1];
    if (!is_selector_wait(nr, regs) || is_poll(nr, regs))
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 now = bpf_ktime_get_ns();
    struct selector_state *s = bpf_map_lookup_elem(&selectors, &tid);
    if (!s) {
        struct selector_state z = {.in_wait = 1};
        bpf_map_update_elem(&selectors, &tid, &z, BPF_ANY);
        return 0;
    }
    if (s->left_at && now - s->left_at >= stall_ns) {
        struct loop_stall_event *ev = bpf_ringbuf_reserve(&stalls, sizeof *ev, 0);
        if (ev) {
            ev->tid = tid;
            ev->pad = 0;
            ev->start_ns = s->left_at;
            ev->ns = now - s->left_at;
            bpf_ringbuf_submit(ev, 0);
        }
    }
    s->in_wait = 1;
    return 0;
}

SEC("raw_tp/sys_exit")
int gp_loop_exit(struct bpf_raw_tracepoint_args *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct selector_state *s = bpf_map_lookup_elem(&selectors, &tid);
    if (!s || !s->in_wait)
        return 0;
    s->in_wait = 0;
    s->left_at = bpf_ktime_get_ns();
    return 0;
}
