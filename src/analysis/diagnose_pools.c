#include "diagnose_pools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/stacks.h"

/* The frames threading.Thread runs a target under. */
static bool threading_bootstrap(const struct py_frame *f)
{
    return f->code && code_file_ends_with(f->code->filename, "threading.py");
}

/* The function a thread was started to run: the outermost Python frame of
 * its most sampled stack, below threading's own bootstrap frames. */
static const struct code_info *entry_function(const struct run_metrics *m,
                                              const struct thread_metrics *t)
{
    uint32_t best = STACK_NONE;
    uint64_t best_count = 0;
    for (int k = 0; k < TS_COUNT; k++)
        for (uint32_t i = 0; i < t->stacks[k].n; i++)
            if (t->stacks[k].counts[i] > best_count) {
                best_count = t->stacks[k].counts[i];
                best = t->stacks[k].ids[i];
            }
    const struct stack_entry *e = stack_table_get(&m->stacks, best);
    if (!e)
        return NULL;
    for (int i = e->nframes - 1; i >= 0; i--) {
        const struct py_frame *f = &e->frames[i];
        if (f->code && !f->code->native && !threading_bootstrap(f))
            return f->code;
    }
    return NULL;
}

/* A function known to take work from a queue: a pool whose workers all
 * run one is fully occupied when none of them waits for work. (Any other
 * function started N times might be N independent loops.) */
static bool known_pool_worker(const struct code_info *c)
{
    const char *name = code_bare_name(c->name);
    return (strcmp(name, "_worker") == 0 &&
            code_file_ends_with(c->filename, "concurrent/futures/thread.py")) ||
           (strcmp(name, "worker") == 0 &&
            code_file_ends_with(c->filename, "multiprocessing/pool.py"));
}

static bool same_function(const struct code_info *a, const struct code_info *b)
{
    return a == b || (a->firstlineno == b->firstlineno && strcmp(a->name, b->name) == 0 &&
                      strcmp(a->filename, b->filename) == 0);
}

struct pool {
    const struct code_info *entry;
    uint32_t workers, idle, occupied;
    double idle_pct_sum;
    pid_t example;
    /* Its queue, as read beside the worker read most often. */
    uint64_t queue_reads;
    double queue_depth_mean;
    int64_t queue_depth_max;
};

static void pool_finding(const struct pool *p, struct diagnosis *d)
{
    char site[300];
    snprintf(site, sizeof site, "%s (%s:%d)", code_bare_name(p->entry->name),
             p->entry->filename, p->entry->firstlineno);
    double idle_mean = p->idle_pct_sum / p->workers;
    struct finding *f;
    if (p->idle * 2 >= p->workers && p->idle >= POOL_MIN_WORKERS) {
        f = diagnose_add(d, "pool", "Worker pool mostly idle", SEV_INFO);
        if (!f)
            return;
        snprintf(f->verdict, sizeof f->verdict,
                 "%u of %u threads running %s waited for work at least %.0f%% of the time "
                 "(all %u: %.0f%% on average); %s",
                 p->idle, p->workers, site, POOL_IDLE_PCT, p->workers, idle_mean,
                 p->idle == p->workers ? "the pool is larger than this load needs"
                                       : "the load keeps the others busy");
        snprintf(f->advice, sizeof f->advice,
                 "Nothing is wrong while the load is this low. Idle threads cost their stacks "
                 "and a wake-up per task; if the load stays like this, a smaller max_workers "
                 "serves it, and a burst still queues rather than fails.");
    } else if (p->occupied == p->workers && known_pool_worker(p->entry)) {
        f = diagnose_add(d, "pool", "Every worker of a pool occupied", SEV_INFO);
        if (!f)
            return;
        char queue[160] = "its queue's depth could not be read";
        if (p->queue_reads)
            snprintf(queue, sizeof queue,
                     "%.1f tasks waited in its queue on average (at most %lld; %llu readings)",
                     p->queue_depth_mean, (long long)p->queue_depth_max,
                     (unsigned long long)p->queue_reads);
        snprintf(f->verdict, sizeof f->verdict,
                 "all %u threads running %.200s were busy (waiting for work at most %.0f%% of "
                 "the time): work submitted to this pool waits for a free worker; %s",
                 p->workers, site, POOL_OCCUPIED_IDLE_MAX_PCT, queue);
        snprintf(f->advice, sizeof f->advice,
                 "Measure the queueing delay where work is submitted (time from submit() to "
                 "the task's start). If the workers wait on I/O, more workers help; if they "
                 "hold the GIL (see the thread table), more threads do not: use processes "
                 "or move the CPU work out.");
    } else {
        return;
    }
    snprintf(f->culprit, sizeof f->culprit, "%u threads running %s, e.g. thread %d",
             p->workers, site, (int)p->example);
    diagnose_evidence(f, "pool.workers", p->workers, ">=", POOL_MIN_WORKERS);
    diagnose_evidence(f, "pool.idle_workers", p->idle, ">=", 0);
    diagnose_evidence(f, "pool.idle_pct_mean", idle_mean, ">=", 0);
    if (p->queue_reads) {
        diagnose_evidence(f, "pool.queue_depth_mean", p->queue_depth_mean, ">=", 0);
        diagnose_evidence(f, "pool.queue_depth_max", (double)p->queue_depth_max, ">=", 0);
    }
}

void rule_worker_pools(const struct run_metrics *m, struct diagnosis *d)
{
    struct pool *pools = calloc(m->nthreads ? m->nthreads : 1, sizeof *pools);
    if (!pools)
        return;
    uint32_t npools = 0;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        if (t->exited || (double)t->samples < POOL_MIN_LIFE * (double)m->samples_taken)
            continue;
        const struct code_info *entry = entry_function(m, t);
        if (!entry)
            continue;
        uint32_t k = 0;
        while (k < npools && !same_function(pools[k].entry, entry))
            k++;
        if (k == npools)
            pools[npools++] = (struct pool){.entry = entry, .example = t->tid};
        struct pool *p = &pools[k];
        double idle = t->pct[TS_IDLE_WAIT];
        p->workers++;
        p->idle += idle >= POOL_IDLE_PCT;
        p->occupied += idle <= POOL_OCCUPIED_IDLE_MAX_PCT;
        p->idle_pct_sum += idle;
        if (t->queue_reads > p->queue_reads) {
            p->queue_reads = t->queue_reads;
            p->queue_depth_mean = t->queue_depth_sum / (double)t->queue_reads;
            p->queue_depth_max = t->queue_depth_max;
        }
    }
    for (uint32_t k = 0; k < npools; k++)
        if (pools[k].workers >= POOL_MIN_WORKERS)
            pool_finding(&pools[k], d);
    free(pools);
}
