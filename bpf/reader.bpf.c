// SPDX-License-Identifier: GPL-2.0
/* One sample of a process in one syscall: a sleepable BPF_PROG_TYPE_SYSCALL
 * program, run on demand with BPF_PROG_TEST_RUN, that copies the requested
 * pieces of the target's memory (the GIL word, stack roots, top frames) and
 * records every thread's state and blocking syscall. Replaces one
 * process_vm_readv plus one /proc/PID/task/TID/syscall read per thread. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "ebpf/reader_shared.h"

char LICENSE[] SEC("license") = "GPL";

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;
extern int bpf_iter_task_new(struct bpf_iter_task *it, struct task_struct *task,
                             unsigned int flags) __ksym;
extern struct task_struct *bpf_iter_task_next(struct bpf_iter_task *it) __ksym;
extern void bpf_iter_task_destroy(struct bpf_iter_task *it) __ksym;
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;

/* Filled in by user space before each run. */
__u32 tgid;
__u32 nreads;
__u32 nfirst; /* reads made before the thread states */
struct gp_read reads[GP_READER_MAX_READS];
/* Filled in by the program. */
__u64 leader_start_ns; /* the process found: its start, to tell a reused PID */
__u32 ntasks;       /* records written */
__u32 ntasks_seen;  /* threads found (more than ntasks: out of room) */
__s32 read_err[GP_READER_MAX_READS];
struct task_rec tasks[GP_READER_MAX_TASKS];
__u8 data[GP_READER_DATA + GP_READER_READ_MAX];

/* Called with the slot's previous record still in r. */
static void record(struct task_struct *t, struct task_rec *r)
{
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
    __u64 switches = t->nvcsw + t->nivcsw;
    __u32 on_cpu = t->on_cpu;
    r->still = r->tid == (__u32)t->pid && !r->on_cpu && !on_cpu && r->switches == switches;
    r->tid = t->pid;
    r->state = t->__state;
    r->on_cpu = on_cpu;
    r->switches = switches;
    r->ivcs = t->nivcsw;
    r->cpu_ns = t->se.sum_exec_runtime;
    __builtin_memcpy(r->comm, t->comm, sizeof r->comm);
    r->syscall_nr = -1;
    if (!regs)
        return;
    r->syscall_nr = regs->orig_ax;
    r->args[0] = regs->di;
    r->args[1] = regs->si;
    r->args[2] = regs->dx;
    r->args[3] = regs->r10;
    r->args[4] = regs->r8;
    r->args[5] = regs->r9;
    r->sp = regs->sp;
    r->pc = regs->ip;
}

static void read_memory(struct task_struct *leader, __u32 from, __u32 to)
{
    struct bpf_iter_num it;
    int *i;
    bpf_iter_num_new(&it, (int)from, (int)to);
    while ((i = bpf_iter_num_next(&it))) {
        __u32 k = (__u32)*i;
        if (k >= GP_READER_MAX_READS)
            break;
        __u32 off = reads[k].off, len = reads[k].len, slot = reads[k].still_slot;
        if (off >= GP_READER_DATA || len > GP_READER_READ_MAX) {
            read_err[k] = -22; /* -EINVAL */
            continue;
        }
        /* (a mask the verifier can follow: user space sends slots <= the
         * record count, a power of two) */
        if (slot && tasks[(slot - 1) & (GP_READER_MAX_TASKS - 1)].still) {
            read_err[k] = GP_READ_SKIPPED;
            continue;
        }
        read_err[k] = bpf_copy_from_user_task(&data[off], len, (void *)reads[k].addr, leader, 0);
    }
    bpf_iter_num_destroy(&it);
}

SEC("syscall")
int gp_read_sample(void *ctx)
{
    struct task_struct *leader = bpf_task_from_pid(tgid);
    struct bpf_iter_task tit;
    struct task_struct *t;

    (void)ctx;
    if (!leader)
        return -3; /* -ESRCH */
    leader_start_ns = leader->start_boottime;
    __u32 n = nreads < GP_READER_MAX_READS ? nreads : GP_READER_MAX_READS;
    __u32 first = nfirst < n ? nfirst : n;
    /* The GIL words first, then the threads' states as close after them
     * as possible (they are compared); then the threads' own memory, read
     * after their records so that a thread that has not run since its
     * record has not changed it since either. */
    read_memory(leader, 0, first);

    /* The counts live in global memory, not registers: the verifier then
     * sees every iteration alike and checks the loop body once instead of
     * once per possible count. */
    ntasks = ntasks_seen = 0;
    bpf_rcu_read_lock();
    bpf_iter_task_new(&tit, leader, BPF_TASK_ITER_PROC_THREADS);
    while ((t = bpf_iter_task_next(&tit))) {
        __u32 k = ntasks;
        ntasks_seen++;
        if (k < GP_READER_MAX_TASKS) {
            record(t, &tasks[k]);
            ntasks = k + 1;
        }
    }
    bpf_iter_task_destroy(&tit);
    bpf_rcu_read_unlock();
    read_memory(leader, first, n);
    bpf_task_release(leader);
    return 0;
}
