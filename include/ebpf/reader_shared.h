/* The one-syscall sample read (bpf/reader.bpf.c): user space lists the
 * memory reads of a sample in the program's mmapped global data, runs the
 * program once with BPF_PROG_TEST_RUN, and finds every read's bytes and
 * every thread's kernel state (struct task_rec) there. Shared by the BPF
 * program and user space. */
#ifndef GILPROBE_BPF_READER_H
#define GILPROBE_BPF_READER_H

#include "ebpf/taskstate.h"

#define GP_READER_MAX_TASKS 4096
#define GP_READER_MAX_READS 8192
#define GP_READER_READ_MAX 256      /* bytes per read; a power of two */
#define GP_READER_DATA (1u << 20)   /* bytes of all reads; a power of two */

struct gp_read {
    __u64 addr;
    __u32 off;  /* into the data area */
    __u16 len;
    /* 0, or 1 + the slot of the thread whose own memory this is, in the
     * previous run's records: skipped (GP_READ_SKIPPED) when that thread
     * is still (struct task_rec) - its last read is as good. */
    __u16 still_slot;
};

#define GP_READ_SKIPPED 1 /* read_err of a read skipped for a still thread */

#endif
