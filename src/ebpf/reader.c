#include "ebpf/reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef GILPROBE_NO_BPF

struct bpf_reader {
    int unused;
};

struct bpf_reader *bpf_reader_open(pid_t pid, uint64_t start_ticks, char *why, size_t whysz)
{
    (void)pid;
    (void)start_ticks;
    snprintf(why, whysz, "gilprobe was built without eBPF (no kernel BTF at build time)");
    return NULL;
}

int bpf_reader_sample(struct bpf_reader *r, struct remote *mem, struct remote_req *reqs,
                      size_t nreq, size_t nfirst, const uint16_t *still_slot, bool *skipped,
                      const struct task_rec **recs, bool *complete)
{
    (void)r;
    (void)mem;
    (void)reqs;
    (void)nreq;
    (void)nfirst;
    (void)still_slot;
    (void)skipped;
    (void)recs;
    (void)complete;
    return -ENOSYS;
}

void bpf_reader_close(struct bpf_reader *r)
{
    (void)r;
}

#else

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ebpf/reader_shared.h"
#include "util/grow.h"
#include "reader.skel.h"

struct bpf_reader {
    struct reader_bpf *skel;
    int prog_fd;
    size_t *overflow; /* indexes of requests read with process_vm_readv */
    struct remote_req *spill;
    size_t capspill;
};

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    (void)level;
    (void)fmt;
    (void)ap;
    return 0;
}

struct bpf_reader *bpf_reader_open(pid_t pid, uint64_t start_ticks, char *why, size_t whysz)
{
    libbpf_set_print(quiet);
    struct bpf_reader *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(why, whysz, "out of memory");
        return NULL;
    }
    r->skel = reader_bpf__open_and_load();
    if (!r->skel || !r->skel->bss) {
        int e = errno;
        snprintf(why, whysz, "cannot load the BPF sample reader: %s%s", strerror(e),
                 e == EPERM    ? " (needs root or CAP_BPF+CAP_PERFMON)"
                 : e == EINVAL ? " (kernel older than 6.7, without open-coded task iterators?)"
                               : "");
        reader_bpf__destroy(r->skel);
        free(r);
        return NULL;
    }
    r->prog_fd = bpf_program__fd(r->skel->progs.gp_read_sample);
    r->skel->bss->tgid = (__u32)pid;
    r->skel->bss->nreads = 0;
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    int err = bpf_prog_test_run_opts(r->prog_fd, &opts);
    long tick_ns = 1000000000L / sysconf(_SC_CLK_TCK);
    const char *bad = err ? strerror(errno)
                      : (int)opts.retval < 0 || r->skel->bss->leader_start_ns / (uint64_t)tick_ns != start_ticks
                          ? "the kernel's process with this PID is another one (gilprobe runs "
                            "in a PID namespace of its own)"
                          : NULL;
    if (bad) {
        snprintf(why, whysz, "BPF sample reader not used: %s", bad);
        bpf_reader_close(r);
        return NULL;
    }
    return r;
}

static bool grow_spill(struct bpf_reader *r, size_t n)
{
    if (n <= r->capspill)
        return true;
    if (!resize_array(&r->spill, sizeof *r->spill, n) ||
        !resize_array(&r->overflow, sizeof *r->overflow, n))
        return false;
    r->capspill = n;
    return true;
}

int bpf_reader_sample(struct bpf_reader *r, struct remote *mem, struct remote_req *reqs,
                      size_t nreq, size_t nfirst, const uint16_t *still_slot, bool *skipped,
                      const struct task_rec **recs, bool *complete)
{
    struct reader_bpf__bss *b = r->skel->bss;
    if (!grow_spill(r, nreq))
        return -ENOMEM;
    __u32 k = 0, off = 0, first = 0;
    size_t nspill = 0;
    for (size_t i = 0; i < nreq; i++) {
        size_t len = reqs[i].len;
        if (skipped)
            skipped[i] = false;
        if (len > GP_READER_READ_MAX || off + len > GP_READER_DATA || k == GP_READER_MAX_READS) {
            r->overflow[nspill] = i;
            r->spill[nspill++] = reqs[i];
            continue;
        }
        uint16_t slot = still_slot && still_slot[i] <= GP_READER_MAX_TASKS ? still_slot[i] : 0;
        b->reads[k] = (struct gp_read){reqs[i].addr, off, (__u16)len, slot};
        off += (__u32)((len + 7) & ~(size_t)7);
        k++;
        first += i < nfirst;
    }
    b->nreads = k;
    b->nfirst = first;
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    int err = bpf_prog_test_run_opts(r->prog_fd, &opts);
    mem->calls++;
    if (err || (int)opts.retval < 0) {
        int e = err ? errno : ((int)opts.retval == -3 ? ESRCH : EIO);
        mem->last_errno = e;
        for (size_t i = 0; i < nreq; i++)
            reqs[i].ok = false;
        return -e;
    }
    k = 0;
    size_t s = 0;
    for (size_t i = 0; i < nreq; i++) {
        if (s < nspill && r->overflow[s] == i) {
            s++;
            continue;
        }
        reqs[i].ok = b->read_err[k] == 0;
        if (skipped)
            skipped[i] = b->read_err[k] == GP_READ_SKIPPED;
        if (reqs[i].ok)
            memcpy(reqs[i].buf, &b->data[b->reads[k].off], reqs[i].len);
        mem->bytes += skipped && skipped[i] ? 0 : reqs[i].len;
        k++;
    }
    if (nspill) {
        remote_readv(mem, r->spill, nspill);
        for (size_t j = 0; j < nspill; j++)
            reqs[r->overflow[j]].ok = r->spill[j].ok;
    }
    *recs = b->tasks;
    *complete = b->ntasks_seen <= b->ntasks;
    return (int)b->ntasks;
}

void bpf_reader_close(struct bpf_reader *r)
{
    if (!r)
        return;
    reader_bpf__destroy(r->skel);
    free(r->spill);
    free(r->overflow);
    free(r);
}

#endif
