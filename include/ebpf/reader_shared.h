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
    __u32 off; /* into the data area */
    __u32 len;
};

#endif
