/* Every thread's kernel state in one read, through a BPF task iterator
 * (bpf/taskstate.bpf.c), where eBPF is available; the sampler falls back
 * to one /proc/PID/task/TID/syscall read per thread otherwise. */
#ifndef GILPROBE_TASKSTATE_ITER_H
#define GILPROBE_TASKSTATE_ITER_H
#include <stddef.h>
#include <sys/types.h>

#include "taskstate.h"

struct taskstate_iter;

/* NULL, with the reason in why, when the iterator cannot be used. */
struct taskstate_iter *taskstate_iter_open(pid_t pid, char *why, size_t whysz);
/* Fills out with up to max records; returns the count or -errno. */
int taskstate_iter_read(struct taskstate_iter *it, struct task_rec *out, size_t max);
void taskstate_iter_close(struct taskstate_iter *it);

#endif
