/* Closing a uprobe's perf event waits for an RCU Tasks Trace grace period
 * (perf_trace_event_unreg), one per probe when closed one after another.
 * Such a grace period takes ~0.1 s on a busy 2-core machine and seconds
 * when it is oversubscribed: 10 probes took gilprobe 30-50 s to detach
 * from a pre-fork server under load (the report was late by that much).
 * Closed from one thread each, the waits overlap: one grace period serves
 * them all. */
#ifndef GILPROBE_NO_BPF
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <bpf/libbpf.h>

#include "links.h"

static void *destroy_one(void *link)
{
    bpf_link__destroy(link);
    return NULL;
}

void links_destroy_all(struct bpf_link **links, size_t n)
{
    pthread_t *threads = calloc(n ? n : 1, sizeof *threads);
    bool *started = calloc(n ? n : 1, sizeof *started);
    for (size_t i = 0; i < n; i++) {
        if (!links[i])
            continue;
        /* No thread (or no memory for the lists): destroyed here, in turn. */
        if (threads && started && pthread_create(&threads[i], NULL, destroy_one, links[i]) == 0)
            started[i] = true;
        else
            bpf_link__destroy(links[i]);
    }
    for (size_t i = 0; i < n && started; i++)
        if (started[i])
            pthread_join(threads[i], NULL);
    free(threads);
    free(started);
}

#else
typedef int links_unused; /* ISO C wants something in a translation unit */
#endif
