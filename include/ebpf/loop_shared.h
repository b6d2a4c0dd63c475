/* Shared by bpf/loop.bpf.c and user space: an event-loop stall measured
 * in the kernel (time between a thread leaving its selector's wait syscall
 * and entering it again). */
#ifndef GILPROBE_LOOP_BPF_H
#define GILPROBE_LOOP_BPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

struct loop_stall_event {
    __u32 tid;
    __u32 pad;
    __u64 start_ns; /* left the selector (CLOCK_MONOTONIC) */
    __u64 ns;       /* out of it this long */
};

#endif
