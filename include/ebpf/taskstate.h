/* One thread's kernel state as the BPF task iterator (bpf/reader.bpf.c)
 * reports it: the same facts as /proc/PID/task/TID/syscall, for every
 * thread of a process in one read. Shared by the BPF program and
 * user space. */
#ifndef GILPROBE_TASKSTATE_H
#define GILPROBE_TASKSTATE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

struct task_rec {
    __u32 tid;          /* in the reader's PID namespace (init's) */
    __u32 state;        /* task __state: 0 = running or runnable */
    __s64 syscall_nr;   /* orig_ax: -1 when not in a syscall */
    __u64 args[6];
    __u64 sp, pc;       /* user stack pointer and instruction pointer */
    __u32 on_cpu;       /* running now; 0 with state 0: waiting for a CPU */
    /* 1: off CPU now and at the previous run's record in this slot (the
     * same thread), with no context switch between: it has not run since,
     * so its memory of its own (its stack) is as the last sample read it. */
    __u32 still;
    __u64 switches;     /* voluntary + involuntary context switches */
    __u64 ivcs;         /* involuntary ones */
    __u64 cpu_ns;       /* CPU time used */
    char comm[16];
};


#endif
