#include "python/classify.h"

#include <stddef.h>
#include <stdio.h>

#if !defined(__x86_64__)
#error "gilprobe's syscall table is x86-64 only"
#endif

struct sys_entry {
    long nr;
    const char *name;
    enum block_kind kind;
};

/* x86-64 numbers. select/poll are special-cased below: with no file
 * descriptors they are how Python <= 3.10 implements time.sleep. */
static const struct sys_entry SYSCALLS[] = {
    {0, "read", BLOCK_IO},          {1, "write", BLOCK_IO},
    {2, "open", BLOCK_IO},          {7, "poll", BLOCK_IO},
    {17, "pread64", BLOCK_IO},      {18, "pwrite64", BLOCK_IO},
    {19, "readv", BLOCK_IO},        {20, "writev", BLOCK_IO},
    {23, "select", BLOCK_IO},       {34, "pause", BLOCK_SLEEP},
    {35, "nanosleep", BLOCK_SLEEP}, {40, "sendfile", BLOCK_IO},
    {42, "connect", BLOCK_IO},      {43, "accept", BLOCK_IO},
    {44, "sendto", BLOCK_IO},       {45, "recvfrom", BLOCK_IO},
    {46, "sendmsg", BLOCK_IO},      {47, "recvmsg", BLOCK_IO},
    {61, "wait4", BLOCK_OTHER},     {73, "flock", BLOCK_LOCK},
    {74, "fsync", BLOCK_IO},        {75, "fdatasync", BLOCK_IO},
    {128, "rt_sigtimedwait", BLOCK_OTHER},
    {130, "rt_sigsuspend", BLOCK_OTHER},
    {202, "futex", BLOCK_LOCK},     {219, "restart_syscall", BLOCK_OTHER},     {208, "io_getevents", BLOCK_IO},
    {230, "clock_nanosleep", BLOCK_SLEEP},
    {232, "epoll_wait", BLOCK_IO},  {247, "waitid", BLOCK_OTHER},
    {257, "openat", BLOCK_IO},      {270, "pselect6", BLOCK_IO},
    {271, "ppoll", BLOCK_IO},       {281, "epoll_pwait", BLOCK_IO},
    {288, "accept4", BLOCK_IO},     {299, "recvmmsg", BLOCK_IO},
    {307, "sendmmsg", BLOCK_IO},    {426, "io_uring_enter", BLOCK_IO},
    {441, "epoll_pwait2", BLOCK_IO},
};

#define SYS_SELECT 23
#define SYS_POLL 7
#define SYS_PSELECT6 270
#define SYS_PPOLL 271
#define SYS_FUTEX 202

static const struct sys_entry *lookup(long nr)
{
    for (size_t i = 0; i < sizeof SYSCALLS / sizeof SYSCALLS[0]; i++)
        if (SYSCALLS[i].nr == nr)
            return &SYSCALLS[i];
    return NULL;
}

const char *syscall_name(long nr)
{
    const struct sys_entry *e = lookup(nr);
    return e ? e->name : NULL;
}

void classify_task(const struct task_info *task, uint64_t gil_addr, uint32_t gil_size,
                   struct block_info *out)
{
    *out = (struct block_info){BLOCK_NONE, NULL, 0};
    if (!task->valid || task->state == 'R' || task->state == 'Z' || task->state == 'X' ||
        task->syscall_nr == SYSCALL_NONE)
        return;
    if (task->syscall_nr == SYSCALL_UNKNOWN) {
        out->kind = BLOCK_OTHER;
        return;
    }
    const struct sys_entry *e = lookup(task->syscall_nr);
    if (!e) {
        out->kind = BLOCK_OTHER;
        return;
    }
    out->syscall = e->name;
    out->kind = e->kind;
    switch (task->syscall_nr) {
    case SYS_FUTEX:
        out->wait_addr = task->args[0];
        if (gil_addr && task->args[0] >= gil_addr && task->args[0] < gil_addr + gil_size)
            out->kind = BLOCK_GIL;
        break;
    case SYS_SELECT:
    case SYS_PSELECT6:
        if (task->args[0] == 0) /* no descriptors: a timed sleep */
            out->kind = BLOCK_SLEEP;
        break;
    case SYS_POLL:
    case SYS_PPOLL:
        if (task->args[1] == 0)
            out->kind = BLOCK_SLEEP;
        break;
    default:
        break;
    }
}

const char *block_kind_name(enum block_kind k)
{
    switch (k) {
    case BLOCK_GIL: return "gil";
    case BLOCK_LOCK: return "lock";
    case BLOCK_IO: return "io";
    case BLOCK_SLEEP: return "sleep";
    case BLOCK_OTHER: return "other";
    default: return NULL;
    }
}
