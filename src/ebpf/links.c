/* Closing a uprobe's perf event waits for an RCU Tasks Trace grace period
 * (perf_trace_event_unreg) under a kernel-wide mutex: one per probe, one
 * after another, even from parallel threads (4 probes: 0.43 s of a 0.55 s
 * run, measured with strace on this 6.18 kernel). Such a grace period
 * takes ~0.1 s on a busy 2-core machine and seconds when it is
 * oversubscribed: 10 probes took gilprobe 30-50 s to detach from a
 * pre-fork server under load. A multi-uprobe link (kernel 6.6+) holds
 * every offset of one program and waits once, outside that mutex; links
 * closed from one thread each overlap their waits. */
#ifndef GILPROBE_NO_BPF
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "links.h"

/* Not in the uapi headers gilprobe builds against (Debian 12: 6.1). */
#define GP_BPF_TRACE_UPROBE_MULTI 48
#define GP_BPF_F_UPROBE_MULTI_RETURN 1u

/* BPF_LINK_CREATE's attributes for a multi-uprobe (include/uapi/linux/
 * bpf.h since 6.6: link_create, its uprobe_multi member at byte 16). */
struct uprobe_multi_attr {
    uint32_t prog_fd, target_fd, attach_type, flags;
    uint64_t path, offsets, ref_ctr_offsets, cookies;
    uint32_t cnt, multi_flags, pid;
    uint32_t pad[9]; /* the kernel wants unknown trailing bytes zero */
};

int links_attach_uprobe_multi(int prog_fd, pid_t pid, const char *path, const uint64_t *off,
                              size_t n, bool ret)
{
    struct uprobe_multi_attr a;
    memset(&a, 0, sizeof a);
    a.prog_fd = (uint32_t)prog_fd;
    a.attach_type = GP_BPF_TRACE_UPROBE_MULTI;
    a.path = (uint64_t)(uintptr_t)path;
    a.offsets = (uint64_t)(uintptr_t)off;
    a.cnt = (uint32_t)n;
    a.multi_flags = ret ? GP_BPF_F_UPROBE_MULTI_RETURN : 0;
    a.pid = (uint32_t)pid;
    return (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof a);
}

/* As libbpf 1.4 probes it: a multi-uprobe on "/" fails with EBADF where
 * they exist, and an invalid pid fails with EINVAL once the kernel filters
 * by process (6.6-6.8 filtered by thread: not used there). */
static bool probe_uprobe_multi(void)
{
    struct bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = GP_BPF_TRACE_UPROBE_MULTI);
    int prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, NULL, "GPL", insns, 2, &o);
    if (prog < 0)
        return false;
    uint64_t offset = 0;
    int fd = links_attach_uprobe_multi(prog, 0, "/", &offset, 1, false);
    bool ok = fd < 0 && errno == EBADF;
    if (fd >= 0)
        close(fd);
    if (ok) {
        fd = links_attach_uprobe_multi(prog, -1, "/", &offset, 1, false);
        ok = fd < 0 && errno == EINVAL;
        if (fd >= 0)
            close(fd);
    }
    close(prog);
    return ok;
}

static bool have_multi;

/* Tests pretend an older kernel with it (the per-offset path stays tested). */
#define NO_UPROBE_MULTI_ENV "GILPROBE_TEST_NO_UPROBE_MULTI"

static void probe_once(void)
{
    have_multi = !getenv(NO_UPROBE_MULTI_ENV) && probe_uprobe_multi();
}

bool links_uprobe_multi(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, probe_once);
    return have_multi;
}

void links_prepare_uprobe_multi(struct bpf_object *obj)
{
    if (!links_uprobe_multi())
        return;
    struct bpf_program *p;
    bpf_object__for_each_program(p, obj) {
        const char *sec = bpf_program__section_name(p);
        if (strncmp(sec, "uprobe", 6) == 0 || strncmp(sec, "uretprobe", 9) == 0)
            bpf_program__set_expected_attach_type(p, GP_BPF_TRACE_UPROBE_MULTI);
    }
}

struct closing {
    struct bpf_link *link;
    int fd;
};

static void *destroy_one(void *arg)
{
    struct closing *c = arg;
    if (c->link)
        bpf_link__destroy(c->link);
    else
        close(c->fd);
    return NULL;
}

void links_destroy_all(struct bpf_link **links, size_t n, const int *fds, size_t nfds)
{
    size_t total = n + nfds;
    pthread_t *threads = calloc(total ? total : 1, sizeof *threads);
    bool *started = calloc(total ? total : 1, sizeof *started);
    struct closing *c = calloc(total ? total : 1, sizeof *c);
    for (size_t i = 0; i < total; i++) {
        if (i < n && !links[i])
            continue;
        struct closing one = {i < n ? links[i] : NULL, i < n ? -1 : fds[i - n]};
        /* No thread (or no memory for the lists): destroyed here, in turn. */
        if (threads && started && c) {
            c[i] = one;
            if (pthread_create(&threads[i], NULL, destroy_one, &c[i]) == 0) {
                started[i] = true;
                continue;
            }
        }
        destroy_one(&one);
    }
    for (size_t i = 0; i < total && started; i++)
        if (started[i])
            pthread_join(threads[i], NULL);
    free(threads);
    free(started);
    free(c);
}

#else
typedef int links_unused; /* ISO C wants something in a translation unit */
#endif
