// SPDX-License-Identifier: GPL-2.0
/* Task iterator over the threads of one process (the iterator link is
 * created with the target's PID): emits a struct task_rec per thread, so
 * the sampler learns every thread's state and blocking syscall with one
 * read() instead of one /proc file read per thread. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "taskstate.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/task")
int gp_task_states(struct bpf_iter__task *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    struct task_struct *task = ctx->task;
    struct task_rec r = {};
    struct pt_regs *regs;

    if (!task)
        return 0;
    r.tid = task->pid;
    r.state = task->__state;
    regs = (struct pt_regs *)bpf_task_pt_regs(task);
    if (regs) {
        r.syscall_nr = regs->orig_ax;
        r.args[0] = regs->di;
        r.args[1] = regs->si;
        r.args[2] = regs->dx;
        r.args[3] = regs->r10;
        r.args[4] = regs->r8;
        r.args[5] = regs->r9;
        r.sp = regs->sp;
        r.pc = regs->ip;
    } else {
        r.syscall_nr = -1;
    }
    bpf_seq_write(seq, &r, sizeof(r));
    return 0;
}
