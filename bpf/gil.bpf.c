// SPDX-License-Identifier: GPL-2.0
/* Exact GIL hold and wait times: uprobes on take_gil (entry and return)
 * and drop_gil (entry and return) of one process, aggregated per thread in
 * the kernel. A hold longer than long_hold_ns emits an event with the
 * holder's raw Python frames, read when it releases the GIL. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "gil_common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* A thread that takes the GIL right after dropping it (a forced switch:
 * it only let another thread run) has been waiting since it began to drop
 * it, including drop_gil's wait for the hand-off to complete. */
#define REACQUIRE_GAP_NS 200000

const volatile __u32 target_tgid = 0;

SEC("uprobe")
int gp_take_gil_in(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = stats_for(tid);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    bool reacquire = s->drop_end_ns && now - s->drop_end_ns < REACQUIRE_GAP_NS;
    s->wait_start_ns = reacquire ? s->drop_start_ns : now;
    return 0;
}

SEC("uretprobe")
int gp_take_gil_out(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = bpf_map_lookup_elem(&gil_threads, &tid);
    if (!s || !s->wait_start_ns)
        return 0; /* the probe went live while this take_gil was running */
    __u64 now = bpf_ktime_get_ns();
    record_wait(s, now - s->wait_start_ns);
    blame_wait(tid, s->wait_start_ns, now);
    s->wait_start_ns = 0;
    s->acquisitions++;
    s->wakeups++;
    s->hold_start_ns = now;
    return 0;
}

SEC("uprobe")
int gp_drop_gil(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = stats_for(tid);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    s->drop_start_ns = now;
    s->drop_end_ns = 0;
    end_hold(tid, s, now);
    return 0;
}

SEC("uretprobe")
int gp_drop_gil_out(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct gil_thread_stats *s = bpf_map_lookup_elem(&gil_threads, &tid);
    if (s && s->drop_start_ns)
        s->drop_end_ns = bpf_ktime_get_ns();
    return 0;
}

/* A thread of the target exits: a wait it died in (a daemon thread
 * stopped inside take_gil at finalization) or a hold it never released
 * ends now, instead of counting until the end of the run. */
SEC("raw_tp/sched_process_exit")
int gp_thread_exit(struct bpf_raw_tracepoint_args *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    if ((id >> 32) != target_tgid)
        return 0;
    __u32 tid = (__u32)id;
    struct gil_thread_stats *s = bpf_map_lookup_elem(&gil_threads, &tid);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    if (s->wait_start_ns) {
        record_wait(s, now - s->wait_start_ns);
        s->wait_start_ns = 0;
    }
    end_hold(tid, s, now);
    return 0;
}
