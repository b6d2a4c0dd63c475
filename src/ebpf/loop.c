#include "ebpf/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebpf/loop_shared.h"
#include "util/grow.h"

#ifdef GILPROBE_NO_BPF

struct loop_exact *loop_exact_start(pid_t pid, double stall_ms, char *why, size_t whysz)
{
    (void)pid;
    (void)stall_ms;
    snprintf(why, whysz, "gilprobe was built without eBPF (no kernel BTF at build time)");
    return NULL;
}

void loop_exact_poll(struct loop_exact *le)
{
    (void)le;
}

void loop_exact_collect(struct loop_exact *le, struct run_metrics *m)
{
    (void)le;
    (void)m;
}

void loop_exact_collect_span(struct loop_exact *le, uint64_t from_ns, uint64_t to_ns,
                             struct run_metrics *m)
{
    (void)le;
    (void)from_ns;
    (void)to_ns;
    (void)m;
}

void loop_exact_forget_before(struct loop_exact *le, uint64_t keep_from_ns)
{
    (void)le;
    (void)keep_from_ns;
}

void loop_exact_stop(struct loop_exact *le)
{
    (void)le;
}

#else

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "links.h"
#include "loop.skel.h"
#include "util/quantiles.h"

struct loop_exact {
    struct loop_bpf *skel;
    struct bpf_link *enter, *exit;
    struct ring_buffer *rb;
    struct loop_stall_event *events;
    size_t n, cap;
};

static int on_stall(void *ctx, void *data, size_t len)
{
    struct loop_exact *le = ctx;
    if (len < sizeof(struct loop_stall_event))
        return 0;
    size_t ncap = grow_for(&le->events, sizeof *le->events, le->n, le->cap, 64);
    if (!ncap)
        return 0;
    le->cap = ncap;
    memcpy(&le->events[le->n++], data, sizeof(struct loop_stall_event));
    return 0;
}

struct loop_exact *loop_exact_start(pid_t pid, double stall_ms, char *why, size_t whysz)
{
    struct loop_exact *le = calloc(1, sizeof *le);
    if (!le)
        return NULL;
    le->skel = loop_bpf__open();
    if (!le->skel) {
        snprintf(why, whysz, "cannot open the event-loop BPF program: %s", strerror(errno));
        free(le);
        return NULL;
    }
    le->skel->rodata->target_tgid = (uint32_t)pid;
    le->skel->rodata->stall_ns = (uint64_t)(stall_ms * 1e6);
    if (loop_bpf__load(le->skel) != 0) {
        snprintf(why, whysz, "cannot load the event-loop BPF program: %s", strerror(errno));
        loop_exact_stop(le);
        return NULL;
    }
    le->enter = bpf_program__attach_raw_tracepoint(le->skel->progs.gp_loop_enter, "sys_enter");
    le->exit = bpf_program__attach_raw_tracepoint(le->skel->progs.gp_loop_exit, "sys_exit");
    le->rb = ring_buffer__new(bpf_map__fd(le->skel->maps.stalls), on_stall, le, NULL);
    if (!le->enter || !le->exit || !le->rb) {
        snprintf(why, whysz, "cannot attach the event-loop probes: %s", strerror(errno));
        loop_exact_stop(le);
        return NULL;
    }
    return le;
}

void loop_exact_poll(struct loop_exact *le)
{
    if (le && le->rb)
        ring_buffer__consume(le->rb);
}

/* Each loop thread's exact stalls among the events that ended in
 * [from_ns, to_ns] (all of them when to_ns is 0). */
static void collect_between(struct loop_exact *le, uint64_t from_ns, uint64_t to_ns,
                            struct run_metrics *m)
{
    if (!le)
        return;
    loop_exact_poll(le);
    for (uint32_t i = 0; i < m->nthreads; i++) {
        struct loop_track *l = &m->threads[i].loop;
        if (!l->seen)
            continue;
        l->exact = true;
        for (size_t k = 0; k < le->n; k++) {
            const struct loop_stall_event *ev = &le->events[k];
            uint64_t end = ev->start_ns + ev->ns;
            if ((pid_t)ev->tid != m->threads[i].tid || (to_ns && (end < from_ns || end > to_ns)))
                continue;
            double *ns = realloc(l->exact_ms, (l->nexact + 1) * sizeof *ns);
            if (!ns)
                break;
            l->exact_ms = ns;
            l->exact_ms[l->nexact++] = (double)ev->ns / 1e6;
        }
        if (l->nexact) {
            double *sorted = malloc(l->nexact * sizeof *sorted);
            if (!sorted)
                continue;
            memcpy(sorted, l->exact_ms, l->nexact * sizeof *sorted);
            struct quantiles q = quantiles_of(sorted, l->nexact);
            l->exact_p50_ms = q.p50;
            l->exact_p99_ms = q.p99;
            l->exact_max_ms = q.max;
            free(sorted);
        }
    }
}

void loop_exact_collect(struct loop_exact *le, struct run_metrics *m)
{
    collect_between(le, 0, 0, m);
}

void loop_exact_collect_span(struct loop_exact *le, uint64_t from_ns, uint64_t to_ns,
                             struct run_metrics *m)
{
    collect_between(le, from_ns, to_ns ? to_ns : 1, m);
}

void loop_exact_forget_before(struct loop_exact *le, uint64_t keep_from_ns)
{
    if (!le)
        return;
    loop_exact_poll(le);
    size_t kept = 0;
    for (size_t k = 0; k < le->n; k++)
        if (le->events[k].start_ns + le->events[k].ns >= keep_from_ns)
            le->events[kept++] = le->events[k];
    le->n = kept;
}

void loop_exact_stop(struct loop_exact *le)
{
    if (!le)
        return;
    ring_buffer__free(le->rb);
    struct bpf_link *links[] = {le->enter, le->exit};
    links_destroy_all(links, 2, NULL, 0);
    loop_bpf__destroy(le->skel);
    free(le->events);
    free(le);
}

#endif
