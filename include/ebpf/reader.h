/* A sample's memory reads and every thread's kernel state in one syscall,
 * through bpf/reader.bpf.c, where eBPF allows it (kernel >= 6.7 with open-
 * coded task iterators, root or CAP_BPF+CAP_PERFMON); the sampler falls
 * back to process_vm_readv and one /proc/PID/task/TID/syscall read per
 * thread otherwise. */
#ifndef GILPROBE_BPF_READER_USER_H
#define GILPROBE_BPF_READER_USER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ebpf/taskstate.h"
#include "target/remote.h"

struct bpf_reader;

/* NULL, with the reason in why, when the reader cannot be used. The
 * kernel knows processes by their PID in the initial namespace: the one it
 * finds must have started at start_ticks (/proc/PID/stat's starttime), or
 * gilprobe runs in another PID namespace and the reader is not used. */
struct bpf_reader *bpf_reader_open(pid_t pid, uint64_t start_ticks, char *why, size_t whysz);
/* Performs reqs like remote_readv (those that do not fit the program's
 * buffers through `mem`) and points *recs at every thread's state, valid
 * until the next call. reqs[0..nfirst) are read before the thread states,
 * the rest after. still_slot (NULL, or one per request): 0, or 1 + the
 * slot in the previous call's records of the thread the read belongs to;
 * the read is skipped (not ok, skipped[i] true) when that record says the
 * thread has not run since (task_rec.still). Returns the number of
 * records, or -errno (ESRCH: the process is gone; its requests are then
 * all failed). *complete is false when the process had more threads than
 * records. */
int bpf_reader_sample(struct bpf_reader *r, struct remote *mem, struct remote_req *reqs,
                      size_t nreq, size_t nfirst, const uint16_t *still_slot, bool *skipped,
                      const struct task_rec **recs, bool *complete);
void bpf_reader_close(struct bpf_reader *r);

#endif
