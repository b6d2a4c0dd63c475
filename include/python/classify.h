/* What a thread is blocked on, from its kernel state and blocking syscall
 * (/proc/PID/task/TID/syscall) and the GIL's address. */
#ifndef GILPROBE_CLASSIFY_H
#define GILPROBE_CLASSIFY_H
#include <stdint.h>

#include "target/proc.h"

enum block_kind {
    BLOCK_NONE = 0, /* running or runnable: not blocked */
    BLOCK_GIL,      /* futex inside the GIL struct: waiting for the GIL */
    BLOCK_LOCK,     /* another futex: a lock, condition or semaphore */
    BLOCK_IO,       /* read/recv/poll/epoll/select/accept/connect ... */
    BLOCK_SLEEP,    /* nanosleep, clock_nanosleep, or select/poll on nothing */
    BLOCK_OTHER,    /* any other syscall, or blocked outside one */
};

struct block_info {
    enum block_kind kind;
    const char *syscall; /* name of the syscall it is blocked in, or NULL */
    uint64_t wait_addr;  /* futex address for BLOCK_LOCK / BLOCK_GIL */
};

void classify_task(const struct task_info *task, uint64_t gil_addr, uint32_t gil_size,
                   struct block_info *out);
const char *block_kind_name(enum block_kind k); /* "gil", "lock", ... or NULL */
const char *syscall_name(long nr); /* NULL when not in the table */

#endif
