/* Reading the target's memory without stopping it (process_vm_readv).
 * Everything read is untrusted: callers validate before following it. */
#ifndef GILPROBE_REMOTE_H
#define GILPROBE_REMOTE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A test seam: when set, every read goes here instead of to the process
 * (the fuzzer reads a synthetic memory image). Whole read or -errno. */
typedef int (*remote_backend_fn)(void *ctx, uint64_t addr, void *buf, size_t len);

struct remote {
    pid_t pid;
    remote_backend_fn backend; /* NULL: process_vm_readv on pid */
    void *backend_ctx;
    int last_errno;      /* errno of the last failed read */
    uint64_t calls;      /* syscalls issued, for the benchmarks */
    uint64_t bytes;      /* bytes read */
};

struct remote_req {
    uint64_t addr;
    void *buf;
    size_t len;
    bool ok;
};

void remote_init(struct remote *r, pid_t pid);
/* Whole read or failure: 0 or -errno (EFAULT for an unmapped address). */
int remote_read(struct remote *r, uint64_t addr, void *buf, size_t len);
/* Many reads in as few syscalls as possible; sets ok per request and
 * returns how many succeeded. */
size_t remote_readv(struct remote *r, struct remote_req *reqs, size_t n);
/* Little helpers for the common scalar reads; false on failure. */
bool remote_u64(struct remote *r, uint64_t addr, uint64_t *out);
bool remote_i32(struct remote *r, uint64_t addr, int32_t *out);

#endif
