#include "taskstate_iter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef GILPROBE_NO_BPF

struct taskstate_iter {
    int unused;
};

struct taskstate_iter *taskstate_iter_open(pid_t pid, char *why, size_t whysz)
{
    (void)pid;
    snprintf(why, whysz, "gilprobe was built without eBPF (no kernel BTF at build time)");
    return NULL;
}

int taskstate_iter_read(struct taskstate_iter *it, struct task_rec *out, size_t max)
{
    (void)it;
    (void)out;
    (void)max;
    return -ENOSYS;
}

void taskstate_iter_close(struct taskstate_iter *it)
{
    (void)it;
}

#else

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "taskstate.skel.h"

struct taskstate_iter {
    struct taskstate_bpf *skel;
    struct bpf_link *link;
};

/* libbpf's own messages would garble the report; failures are reported as
 * one reason line instead. */
static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    (void)level;
    (void)fmt;
    (void)ap;
    return 0;
}

struct taskstate_iter *taskstate_iter_open(pid_t pid, char *why, size_t whysz)
{
    libbpf_set_print(quiet);
    struct taskstate_iter *it = calloc(1, sizeof *it);
    if (!it) {
        snprintf(why, whysz, "out of memory");
        return NULL;
    }
    it->skel = taskstate_bpf__open_and_load();
    if (!it->skel) {
        int e = errno;
        snprintf(why, whysz, "cannot load the BPF task iterator: %s%s", strerror(e),
                 e == EPERM ? " (needs root or CAP_BPF+CAP_PERFMON)" : "");
        free(it);
        return NULL;
    }
    union bpf_iter_link_info info;
    memset(&info, 0, sizeof info);
    info.task.pid = (__u32)pid;
    LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info, .link_info_len = sizeof info);
    it->link = bpf_program__attach_iter(it->skel->progs.gp_task_states, &opts);
    if (!it->link) {
        snprintf(why, whysz, "cannot attach the BPF task iterator to process %d: %s (kernel "
                 "too old for per-process task iterators?)", pid, strerror(errno));
        taskstate_bpf__destroy(it->skel);
        free(it);
        return NULL;
    }
    return it;
}

int taskstate_iter_read(struct taskstate_iter *it, struct task_rec *out, size_t max)
{
    int fd = bpf_iter_create(bpf_link__fd(it->link));
    if (fd < 0)
        return -errno;
    size_t got = 0;
    char *p = (char *)out;
    size_t cap = max * sizeof *out;
    for (;;) {
        ssize_t r = read(fd, p + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == cap)
            break; /* more threads than room: the caller grows and retries */
    }
    close(fd);
    return (int)(got / sizeof *out);
}

void taskstate_iter_close(struct taskstate_iter *it)
{
    if (!it)
        return;
    bpf_link__destroy(it->link);
    taskstate_bpf__destroy(it->skel);
    free(it);
}

#endif
