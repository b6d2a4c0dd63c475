#include "sample/sampler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ebpf/reader.h"
#include "python/asyncio_running.h"
#include "python/asyncio_tasks.h"
#include "python/asyncio_count.h"
#include "python/asyncio_timers.h"
#include "python/classify.h"
#include "python/gil.h"
#include "python/parking_lot.h"
#include "python/snapshot.h"
#include "python/stackwalk.h"
#include "python/work_queue.h"
#include "sample/idle_wait.h"
#include "util/addrmap.h"
#include "util/grow.h"
#include "util/clock.h"

struct tracked {
    uint64_t tstate;
    uint64_t pthread; /* its ident, the key of threading._active */
    pid_t tid;
    uint32_t metrics_idx;
    /* Its /proc syscall and stat files, kept open; opened only when first
     * needed (FD_UNOPENED before): with the eBPF reader they never are. */
    int syscall_fd;
    int stat_fd;
    struct raw_frame *prev, *spare;
    int nprev, capprev, capspare;
    uint64_t prev_root;
    struct task_info sys;    /* this sample's kernel view (valid: readable) */
    bool holds;
    bool settled, next_settled; /* blocked in the same syscall twice running */
    enum tstate_kind last_kind;
    uint32_t runnable_samples; /* consecutive samples runnable without the GIL */
    uint32_t stack_id;
    uint64_t parked_futex, parked_lock; /* last parking-lot wait resolved */
    bool parked_in_queue_get;           /* that wait is inside SimpleQueue.get */
    /* Has not run since the last sample (the eBPF reader's task_rec.still):
     * its stack was not read again, the last one stands. walk_ok: that
     * last walk was whole, so it may stand. */
    bool still, walk_ok;
    /* Gone from the kernel since the last thread-list refresh: no sample
     * of it counts (its thread state may linger, its memory be reused). */
    bool vanished;
    char task[ASYNCIO_TASK_NAME_MAX]; /* the asyncio task its loop runs (this sample) */
    uint32_t task_stack;              /* ... read with this stack */
    double task_read;                 /* ... then */
    /* the event loop it runs, once found, and its timers' last read */
    uint64_t loop;
    double loop_looked, timers_read, timers_every, tasks_counted;
    struct asyncio_timer *timers; /* ASYNCIO_TIMERS_MAX, allocated when first read */
};

struct sampler {
    const struct sampler_options *opt;
    struct pyrt *rt;
    struct pyobj_cache *cache;
    struct run_metrics *m;
    uint64_t gil_addr, tstate_current_addr;
    double period_s;
    uint64_t jitter_state; /* xorshift64 state for each period's sampling instant */
    double start;
    struct bpf_reader *reader;   /* NULL: process_vm_readv + one /proc read per thread */
    struct asyncio_running *running; /* which task a busy event loop runs */
    struct asyncio_timers *timers;   /* the timers an event loop has scheduled */
    struct asyncio_count *counter;   /* how many tasks are alive */
    const struct task_rec *recs; /* this sample's, from the reader */
    bool recs_complete;          /* every thread of the process has its record */
    bool recs_fresh;             /* recs are the last sample's */
    uint32_t nrecs;
    struct addrmap rec_of_tid;   /* tid -> rec index + 1, of the last sample with recs */
    uint64_t bpf_samples;        /* samples read through it */
    uint64_t still_samples;      /* thread-samples of still threads (struct tracked) */
    int32_t root_off;
    struct tracked *t;
    uint32_t n, cap;
    struct idle_classifier idle;   /* which stacks wait for work, not a lock */
    struct queue_module queue_mod; /* where the C SimpleQueue's code is */
    /* scratch, grown with the thread count */
    struct remote_req *reqs;
    uint16_t *still_slot; /* per request: bpf_reader_sample's */
    bool *skipped;
    uint64_t *roots;
    size_t *root_req, *pre_at, *pre_n;
    uint32_t *root_of;
    struct stack_walk *walks;
    struct thread_obs *obs;
    struct py_frame *resolved;
    int resolved_cap;
    uint32_t scratch_cap;
    pid_t *os_tids;
    size_t n_os;
    uint32_t n_listed; /* Python thread states at the last full refresh */
    struct thread_names names;
    bool names_due;        /* a thread was added: read the names again */
    uint32_t names_age;    /* refreshes since they were read */
    bool first_refresh;
    double uvloop_checked; /* when the memory map was last read for uvloop */
    double uvloop_first;   /* ... and first */
    bool gone;
    bool execd;
};

static void close_tracked(struct tracked *t)
{
    if (t->syscall_fd >= 0)
        close(t->syscall_fd);
    if (t->stat_fd >= 0)
        close(t->stat_fd);
    t->syscall_fd = t->stat_fd = -1;
    free(t->prev);
    free(t->spare);
    free(t->timers);
    t->timers = NULL;
    t->loop = 0;
    t->prev = t->spare = NULL;
    t->nprev = t->capprev = t->capspare = 0;
}

#define FD_UNOPENED (-2)

/* One of a thread's /proc files, opened when first needed. */
static int task_fd(struct sampler *s, struct tracked *t, int *fd, const char *name)
{
    if (*fd == FD_UNOPENED)
        *fd = t->tid ? proc_task_open(s->rt->pid, t->tid, name) : -1;
    return *fd;
}

/* The thread's record in the last sample's eBPF read, or NULL. */
static const struct task_rec *rec_of(const struct sampler *s, pid_t tid)
{
    uintptr_t k = s->recs_fresh && tid ? (uintptr_t)addrmap_get(&s->rec_of_tid, (uint64_t)tid) : 0;
    return k ? &s->recs[k - 1] : NULL;
}

/* utime+stime (ns) from an open stat file. */
static bool read_cpu_ns(int fd, uint64_t *ns)
{
    char buf[1024];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    struct proc_stat st;
    if (proc_stat_parse(buf, &st) < 0)
        return false;
    *ns = (st.utime + st.stime) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
    return true;
}

/* CPU time and involuntary switches: from the eBPF reader's records, or
 * (without them) two /proc files. */
static void update_cpu(struct sampler *s, struct tracked *t)
{
    struct thread_metrics *tm = &s->m->threads[t->metrics_idx];
    uint64_t ticks, ivcs;
    const struct task_rec *r = rec_of(s, t->tid);
    if (r) {
        ticks = r->cpu_ns;
        ivcs = r->ivcs;
    } else if (task_fd(s, t, &t->stat_fd, "stat") < 0 || !read_cpu_ns(t->stat_fd, &ticks) ||
               proc_status_value(s->rt->pid, t->tid, "nonvoluntary_ctxt_switches", &ivcs) != 0) {
        return;
    }
    double now = clock_mono_s();
    if (!tm->cpu_valid) {
        tm->cpu_first = ticks;
        tm->ivcs_first = ivcs;
        tm->t_first = now;
        tm->cpu_valid = true;
    }
    tm->cpu_last = ticks;
    tm->ivcs_last = ivcs;
    tm->t_last = now;
}

static bool grow_scratch(struct sampler *s, uint32_t need)
{
    /* A sample always reads the GIL (reqs[0..1]), even of a process whose
     * thread list is empty (starting, finalizing, or unreadable). */
    if (need == 0)
        need = 1;
    if (need <= s->scratch_cap)
        return true;
    uint32_t cap = need * 2;
    /* Each may move alone: one that failed keeps its old, smaller size,
     * and scratch_cap only grows once all have. */
    size_t nreqs = cap * (1 + STACKWALK_PREFETCH_REQS) + 2;
    if (!resize_array(&s->reqs, sizeof *s->reqs, nreqs) ||
        !resize_array(&s->still_slot, sizeof *s->still_slot, nreqs) ||
        !resize_array(&s->skipped, sizeof *s->skipped, nreqs) ||
        !resize_array(&s->roots, sizeof *s->roots, cap) ||
        !resize_array(&s->walks, sizeof *s->walks, cap) ||
        !resize_array(&s->obs, sizeof *s->obs, cap) ||
        !resize_array(&s->root_req, sizeof *s->root_req, cap) ||
        !resize_array(&s->pre_at, sizeof *s->pre_at, cap) ||
        !resize_array(&s->pre_n, sizeof *s->pre_n, cap) ||
        !resize_array(&s->root_of, sizeof *s->root_of, cap))
        return false;
    s->scratch_cap = cap;
    return true;
}

static int track_thread(struct sampler *s, const struct py_thread *pt)
{
    size_t ncap = grow_for(&s->t, sizeof *s->t, s->n, s->cap, 16);
    if (!ncap)
        return -1;
    s->cap = (uint32_t)ncap;
    struct task_info ti;
    const char *name = "?";
    const struct task_rec *r = rec_of(s, pt->tid);
    char comm[sizeof r->comm + 1] = "";
    if (r) {
        memcpy(comm, r->comm, sizeof r->comm);
        name = comm;
    } else if (proc_task_read(s->rt->pid, pt->tid, &ti) == 0) {
        name = ti.comm;
    }
    uint32_t idx = metrics_add_thread(s->m, pt->tid, name, pt->tstate);
    if (idx == UINT32_MAX)
        return -1;
    struct tracked *t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    t->tstate = pt->tstate;
    t->pthread = pt->pthread;
    t->tid = pt->tid;
    t->metrics_idx = idx;
    s->names_due = true;
    t->last_kind = TS_OTHER;
    t->syscall_fd = t->stat_fd = FD_UNOPENED;
    update_cpu(s, t);
    return 0;
}

/* A thread state listed before its OS thread ran has no TID yet: when it
 * gets one it is the same thread, not one that exited and another that
 * started (which miscounted churn: 2000 threads counted 2003-2009). */
static void adopt_tid(struct sampler *s, struct tracked *t, pid_t tid)
{
    struct thread_metrics *tm = &s->m->threads[t->metrics_idx];
    struct task_info ti;
    t->tid = tm->tid = tid;
    const struct task_rec *r = rec_of(s, tid);
    if (r)
        snprintf(tm->name, sizeof tm->name, "%.*s", (int)sizeof r->comm, r->comm);
    else if (proc_task_read(s->rt->pid, tid, &ti) == 0)
        snprintf(tm->name, sizeof tm->name, "%s", ti.comm);
    t->syscall_fd = t->stat_fd = FD_UNOPENED;
}

/* uvloop's extension module is mapped: its loops need recognising too. */
static bool maps_have_uvloop(pid_t pid)
{
    return proc_maps_mention(pid, "/uvloop/loop.");
}

static bool contains(const pid_t *v, size_t n, pid_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* Python thread names: when a thread was added, and every
 * SAMPLER_NAMES_EVERY refreshes (a thread can be renamed any time). A
 * thread that leaves threading._active keeps the name it had. */
#define SAMPLER_NAMES_EVERY 50

static void read_names(struct sampler *s)
{
    if (!s->names_due && ++s->names_age < SAMPLER_NAMES_EVERY)
        return;
    s->names_due = false;
    s->names_age = 0;
    thread_names_read(s->rt, s->cache, &s->names);
    for (uint32_t i = 0; i < s->n; i++) {
        struct thread_metrics *tm = &s->m->threads[s->t[i].metrics_idx];
        const char *why;
        const char *name = thread_names_find(&s->names, s->t[i].pthread, &why);
        tm->work_queue = thread_names_work_queue(&s->names, s->t[i].pthread);
        if (name) {
            snprintf(tm->python_name, sizeof tm->python_name, "%s", name);
            tm->python_name_why = NULL;
        } else if (!tm->python_name[0]) {
            tm->python_name_why = why;
        }
    }
}

/* How many items wait in each pool worker's queue: read once per queue
 * (a pool's workers share theirs) at each refresh. */
#define QUEUES_PER_REFRESH 16

static void read_work_queues(struct sampler *s)
{
    uint64_t seen[QUEUES_PER_REFRESH];
    int64_t depth[QUEUES_PER_REFRESH];
    bool ok[QUEUES_PER_REFRESH];
    uint32_t nseen = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        struct thread_metrics *tm = &s->m->threads[s->t[i].metrics_idx];
        if (!tm->work_queue || tm->exited)
            continue;
        uint32_t k = 0;
        while (k < nseen && seen[k] != tm->work_queue)
            k++;
        if (k == nseen) {
            if (nseen == QUEUES_PER_REFRESH)
                continue;
            seen[nseen] = tm->work_queue;
            ok[nseen] = work_queue_depth(s->rt, tm->work_queue, &depth[nseen]);
            nseen++;
        }
        if (!ok[k])
            continue;
        tm->queue_reads++;
        tm->queue_depth_sum += (double)depth[k];
        if (depth[k] > tm->queue_depth_max)
            tm->queue_depth_max = depth[k];
    }
}

/* The process's OS threads: those of the last sample's eBPF records when
 * they are all there (a /proc directory read ten times a second cost as
 * much as a sample of 50 threads), else /proc's. */
static int list_tasks(struct sampler *s, pid_t **tids, size_t *n)
{
    if (!s->recs_fresh || !s->recs_complete)
        return proc_list_tasks(s->rt->pid, tids, n);
    size_t k = 0, cap = 0;
    *tids = NULL;
    for (uint32_t i = 0; i < s->nrecs; i++) {
        if (!(cap = grow_for(tids, sizeof **tids, k, cap, 64))) {
            free(*tids);
            return proc_list_tasks(s->rt->pid, tids, n);
        }
        (*tids)[k++] = (pid_t)s->recs[i].tid;
    }
    *n = k;
    return 0;
}

/* Re-reads the thread list: new threads are tracked, gone ones retired,
 * CPU counters refreshed. */
static int refresh(struct sampler *s, struct gp_error *err)
{
    struct snapshot snap;
    struct gp_error local = {0};
    /* one read of its stat: gone (exited, a zombie, its PID reused)? */
    struct proc_stat st;
    if (proc_stat_read(s->rt->pid, 0, &st) != 0 || proc_stat_exited(&st) ||
        st.starttime != s->rt->start_time) {
        s->gone = true;
        return GP_OK;
    }
    /* An exec replaced the program: nothing of the Python that was
     * attached to is left (the new image's memory is not its layout). */
    uint64_t image = proc_stat_image_id(&st);
    if (image && s->rt->image_id && image != s->rt->image_id) {
        s->gone = s->execd = true;
        return GP_OK;
    }
    if (snapshot_take(s->rt, s->cache, false, &snap, &local) != GP_OK) {
        s->gone = local.code == GP_ERR_EXITED;
        if (!s->gone)
            *err = local;
        return s->gone ? GP_OK : local.code;
    }
    /* Checked again after the read: a process that took over the PID
     * while it was read must not have its threads mixed in. */
    if (proc_start_time(s->rt->pid) != s->rt->start_time) {
        snapshot_free(&snap);
        s->gone = true;
        return GP_OK;
    }
    /* Threads are known by (tstate, tid): a tstate address is reused by
     * the next thread, a TID by the next process. */
    struct addrmap listed;
    addrmap_init(&listed);
    for (size_t k = 0; k < snap.nthreads; k++)
        addrmap_put(&listed, snap.threads[k].tstate, (void *)(uintptr_t)(k + 1));
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        struct tracked *t = &s->t[i];
        uintptr_t k = (uintptr_t)addrmap_get(&listed, t->tstate);
        if (k && !t->tid && snap.threads[k - 1].tid)
            adopt_tid(s, t, snap.threads[k - 1].tid);
        if (k && snap.threads[k - 1].tid == t->tid) {
            update_cpu(s, t);
            addrmap_put(&listed, t->tstate, (void *)(uintptr_t)-1); /* seen */
            s->t[kept++] = *t;
            continue;
        }
        s->m->threads[t->metrics_idx].exited = true;
        s->m->py_exited++;
        close_tracked(t);
    }
    s->n = kept;
    for (size_t k = 0; k < snap.nthreads; k++) {
        if ((uintptr_t)addrmap_get(&listed, snap.threads[k].tstate) == (uintptr_t)-1)
            continue;
        if (track_thread(s, &snap.threads[k]) != 0)
            break;
        if (!s->first_refresh)
            s->m->py_created++;
    }
    addrmap_free(&listed);
    /* 3.12+ keeps the GIL per interpreter: a program just started by `run`
     * may not have created it when sampling began. */
    if (!s->gil_addr && snap.nthreads)
        s->gil_addr = gil_locate(s->rt);
    pid_t *tids;
    size_t ntids;
    if (list_tasks(s, &tids, &ntids) == 0) {
        if (!s->first_refresh) {
            for (size_t i = 0; i < ntids; i++)
                s->m->os_created += !contains(s->os_tids, s->n_os, tids[i]);
            for (size_t i = 0; i < s->n_os; i++)
                s->m->os_exited += !contains(tids, ntids, s->os_tids[i]);
        }
        free(s->os_tids);
        s->os_tids = tids;
        s->n_os = ntids;
    }
    s->n_listed = (uint32_t)snap.nthreads;
    metrics_thread_counts(s->m, s->n_listed, (uint32_t)s->n_os);
    read_names(s);
    read_work_queues(s);
    /* uvloop comes with an import: looked for every few seconds (the
     * memory map of a Python process is long to read) */
    double now = clock_mono_s();
    if (!s->uvloop_first)
        s->uvloop_first = now;
    double every = (now - s->uvloop_first) / 10;
    every = every < SAMPLER_UVLOOP_CHECK_S       ? SAMPLER_UVLOOP_CHECK_S
            : every > SAMPLER_UVLOOP_CHECK_MAX_S ? SAMPLER_UVLOOP_CHECK_MAX_S
                                                 : every;
    if (!s->m->loop_cls.uvloop && now - s->uvloop_checked >= every) {
        s->uvloop_checked = now;
        s->m->loop_cls.uvloop = maps_have_uvloop(s->rt->pid);
    }
    if (s->opt->on_refresh)
        s->opt->on_refresh(&snap, s->opt->refresh_arg);
    snapshot_free(&snap);
    s->first_refresh = false;
    return grow_scratch(s, s->n) ? GP_OK : GP_ERR_INTERNAL;
}

/* The OS threads of the last sample's records are those of the last full
 * refresh: no thread started or ended since (as far as the kernel shows). */
static bool threads_unchanged(const struct sampler *s)
{
    if (!s->recs_fresh || !s->recs_complete || !s->n || s->nrecs != s->n_os)
        return false;
    for (uint32_t i = 0; i < s->nrecs; i++)
        if (!contains(s->os_tids, s->n_os, (pid_t)s->recs[i].tid))
            return false;
    return true;
}

/* Between full refreshes of a process whose threads did not change: what
 * a refresh keeps current without re-reading the thread list. */
static void light_refresh(struct sampler *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        update_cpu(s, &s->t[i]);
    metrics_thread_counts(s->m, s->n_listed, (uint32_t)s->n_os);
    read_names(s);
    read_work_queues(s);
    if (s->opt->on_refresh)
        s->opt->on_refresh(NULL, s->opt->refresh_arg);
}

/* A thread on a CPU (or runnable) without the GIL is either in native code
 * that released it, or between two steps of take_gil/drop_gil: woken to
 * retry, or handing the GIL over. The latter lasts microseconds, longer
 * only when CPUs are short; so a thread that just waited for or held the
 * GIL, while someone else holds it, counts as waiting for at most this
 * long, and as running without the GIL after. */
#define GIL_RUNNABLE_WAIT_MAX_S 0.005

/* FUTEX_WAIT or FUTEX_WAIT_BITSET, whatever the private/clock flags. */
static bool futex_op_waits(uint64_t op)
{
    return (op & 127) == 0 || (op & 127) == 9;
}

static enum tstate_kind kind_of(struct tracked *t, const struct block_info *b, bool holds,
                                bool gil_locked, double period_s)
{
    enum tstate_kind k;
    if (holds && b->kind == BLOCK_GIL)
        k = TS_GIL_WAIT; /* blocked inside drop_gil: handing the GIL over */
    else if (holds)
        k = TS_GIL_HELD;
    else if (b->kind == BLOCK_GIL)
        k = TS_GIL_WAIT;
    else if (b->kind != BLOCK_NONE)
        k = b->kind == BLOCK_LOCK    ? TS_LOCK_WAIT
            : b->kind == BLOCK_IO    ? TS_IO_WAIT
            : b->kind == BLOCK_SLEEP ? TS_SLEEP
                                     : TS_OTHER;
    /* Runnable right after waiting: still in take_gil (woken, or spinning
     * on its mutex) until it holds the GIL, whether or not the releaser's
     * hand-off is done; runnable right after a forced drop while another
     * holds it: asking for it back. */
    else if ((t->last_kind == TS_GIL_WAIT || (t->last_kind == TS_GIL_HELD && gil_locked)) &&
             (double)t->runnable_samples * period_s < GIL_RUNNABLE_WAIT_MAX_S)
        k = TS_GIL_WAIT;
    else
        k = TS_NOGIL_RUNNING;
    t->runnable_samples = b->kind == BLOCK_NONE && !holds ? t->runnable_samples + 1 : 0;
    return k;
}

static uint32_t stack_of(struct sampler *s, struct tracked *t, struct stack_walk *w)
{
    /* Double buffering: this walk's frames become the next walk's "prev". */
    if (t->still)
        return t->stack_id; /* not walked: the last walk stands */
    struct raw_frame *old = t->prev;
    int oldcap = t->capprev;
    t->prev = w->frames;
    t->capprev = w->cap;
    t->nprev = w->nframes;
    t->spare = old;
    t->capspare = oldcap;
    if (w->unchanged && t->stack_id != STACK_NONE)
        return t->stack_id;
    if (w->nframes > s->resolved_cap) {
        if (!resize_array(&s->resolved, sizeof *s->resolved, (size_t)w->nframes))
            return STACK_NONE;
        s->resolved_cap = w->nframes;
    }
    bool partial = false;
    int n = stackwalk_resolve(s->rt, s->cache, w->frames, w->nframes, s->resolved, w->nframes,
                              &partial);
    t->stack_id = stack_table_intern(&s->m->stacks, s->resolved, n);
    return t->stack_id;
}

/* Kernel view of t from its /proc/.../syscall file (kept open). */
static void read_proc_syscall(struct sampler *s, struct tracked *t, struct task_info *out)
{
    char buf[256];
    int fd = task_fd(s, t, &t->syscall_fd, "syscall");
    ssize_t r = fd >= 0 ? pread(fd, buf, sizeof buf - 1, 0) : -1;
    out->valid = r > 0;
    if (r < 0 && errno == ESRCH)
        t->vanished = true; /* the task has exited: its file answers ESRCH */
    if (r <= 0)
        return;
    buf[r] = '\0';
    proc_parse_syscall(buf, out);
}

/* The sample's memory and every thread's kernel view in one BPF program
 * run; false when it failed (the caller then reads the old way). */
static bool read_with_bpf(struct sampler *s, size_t nreq)
{
    bool complete;
    s->recs_fresh = false;
    int n = bpf_reader_sample(s->reader, &s->rt->mem, s->reqs, nreq, 2, s->still_slot, s->skipped,
                              &s->recs, &complete);
    if (n < 0)
        return n == -ESRCH; /* gone: the failed reads tell the caller */
    s->recs_complete = complete;
    s->recs_fresh = true;
    s->nrecs = (uint32_t)n;
    addrmap_clear(&s->rec_of_tid);
    for (int i = 0; i < n; i++)
        addrmap_put(&s->rec_of_tid, s->recs[i].tid, (void *)(uintptr_t)(i + 1));
    return true;
}

static void view_from_rec(const struct task_rec *r, struct task_info *out)
{
    out->valid = true;
    memcpy(out->args, r->args, sizeof out->args);
    out->sp = r->sp;
    out->pc = r->pc;
    out->syscall_nr = r->state == 0 ? SYSCALL_NONE
                      : r->syscall_nr < 0 ? SYSCALL_UNKNOWN
                                          : (long)r->syscall_nr;
    /* Off CPU, its registers are those it entered the kernel with: a
     * syscall's number, or -1 when an interrupt preempted user code. On a
     * CPU they are stale. */
    out->woken_in_syscall = r->state == 0 && !r->on_cpu ? (long)r->syscall_nr : -1;
}

static bool same_view(const struct task_info *a, const struct task_info *b)
{
    return a->valid && b->valid && a->syscall_nr == b->syscall_nr && a->sp == b->sp &&
           a->pc == b->pc && memcmp(a->args, b->args, sizeof a->args) == 0;
}

/* Phase 1 of a sample: the batched read's requests (after the GIL word
 * and the current thread state in reqs[0..1]): each thread's stack root
 * unless settled, and its prefetched top frames. Returns how many. */
static size_t build_requests(struct sampler *s)
{
    uint32_t n = s->n;
    size_t nreq = 2;
    s->still_slot[0] = s->still_slot[1] = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct tracked *t = &s->t[i];
        s->roots[i] = t->prev_root;
        s->root_req[i] = SIZE_MAX;
        /* Its reads are skipped if it has not run since its last record
         * (in that record's slot), when the last walk may stand for them. */
        const struct task_rec *r = t->walk_ok && !s->opt->native ? rec_of(s, t->tid) : NULL;
        uint16_t slot = r ? (uint16_t)(r - s->recs + 1) : 0;
        size_t first = nreq;
        if (!t->settled) {
            s->root_req[i] = nreq;
            s->reqs[nreq++] = (struct remote_req){t->tstate + (uint64_t)s->root_off,
                                                  &s->roots[i], 8, false};
        }
        s->walks[i] = (struct stack_walk){.prev = t->prev, .nprev = t->nprev,
                                          .prev_root = t->prev_root, .frames = t->spare,
                                          .cap = t->capspare};
        /* A thread that ran last time probably changed at the top: its
         * caller frame is read ahead too. */
        int ahead = t->settled || t->last_kind == TS_GIL_WAIT || t->last_kind == TS_SLEEP ||
                            t->last_kind == TS_IO_WAIT || t->last_kind == TS_LOCK_WAIT ||
                            t->last_kind == TS_IDLE_WAIT
                        ? 1
                        : 2;
        s->pre_at[i] = nreq;
        nreq += stackwalk_prefetch_requests(s->rt, &s->walks[i], ahead, &s->reqs[nreq]);
        s->pre_n[i] = nreq - s->pre_at[i];
        for (size_t k = first; k < nreq; k++)
            s->still_slot[k] = slot;
    }
    return nreq;
}

/* Phase 2: the GIL from the read; false when it could not be read (or is
 * off in a free-threaded build). */
static bool decode_gil(struct sampler *s, const uint8_t *gilbuf, uint64_t cur, struct gil_state *g)
{
    bool gil_ok = s->reqs[0].ok && (!s->tstate_current_addr || s->reqs[1].ok);
    if (gil_ok) {
        gil_decode(s->rt, s->gil_addr, gilbuf, cur, g);
        if (!g->enabled) {
            /* Free-threaded build, GIL off: no GIL figures from this sample. */
            gil_ok = false;
            s->m->gil_disabled_samples++;
        }
    } else if (s->rt->mem.last_errno == ESRCH) {
        s->gone = true;
    }
    return gil_ok;
}

/* Phase 3: each thread's kernel view (from the eBPF reader's records or
 * its syscall file); the settled threads that moved get their root read.
 * Returns how many roots to read (s->reqs[0..), s->root_of). */
static size_t read_views(struct sampler *s, const struct gil_state *gp, bool gil_ok, bool from_bpf)
{
    const struct gil_state g = *gp;
    uint32_t n = s->n;
    size_t nroot = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct tracked *t = &s->t[i];
        struct stack_walk *w = &s->walks[i];
        uintptr_t k = from_bpf ? (uintptr_t)addrmap_get(&s->rec_of_tid, (uint64_t)t->tid) : 0;
        /* Still: its reads were skipped (a spilled one may have been made;
         * the last walk stands all the same). */
        size_t own = s->root_req[i] != SIZE_MAX ? s->root_req[i] : s->pre_at[i];
        t->still = k && s->recs[k - 1].still && own < s->pre_at[i] + s->pre_n[i] &&
                   s->skipped[own];
        t->holds = gil_ok && g.holder == t->tstate;
        if (t->still) {
            s->still_samples++;
            s->roots[i] = t->prev_root;
            view_from_rec(&s->recs[k - 1], &t->sys);
            continue;
        }
        stackwalk_prefetch_done(w, &s->reqs[s->pre_at[i]], s->pre_n[i]);
        if (s->root_req[i] != SIZE_MAX && !s->reqs[s->root_req[i]].ok)
            s->roots[i] = 0;
        struct task_info view = {.tid = t->tid, .state = 'S', .woken_in_syscall = -1};
        if (k)
            view_from_rec(&s->recs[k - 1], &view);
        else if (from_bpf && s->recs_complete && t->tid)
            t->vanished = true; /* every live thread has a record */
        else
            read_proc_syscall(s, t, &view); /* no eBPF, or more threads than records */
        bool same_line = !t->holds && same_view(&view, &t->sys);
        t->sys = view;
        bool running = !view.valid || view.syscall_nr == SYSCALL_NONE;
        /* A settled thread whose top frame or syscall moved needs its root. */
        if (t->settled && (!same_line || !stackwalk_top_unchanged(s->rt, w))) {
            s->reqs[nroot] = (struct remote_req){t->tstate + (uint64_t)s->root_off, &s->roots[i],
                                                 8, false};
            s->root_of[nroot++] = i;
        }
        t->next_settled = same_line && !running;
    }
    return nroot;
}

/* Phase 4: see the comment inside. */
static void recheck_handovers(struct sampler *s, const struct gil_state *gp, uint64_t cur)
{
    const struct py_layout *L = &s->rt->layout;
    const struct gil_state g = *gp;
    uint32_t n = s->n;
    /* A holder seen blocked inside the GIL struct is handing it over, if
     * it still held the GIL after its state was read: the syscall files are
     * read tens of microseconds after the GIL word, so check again rather
     * than blame a hand-off that came later. */
    for (uint32_t i = 0; i < n; i++) {
        struct tracked *t = &s->t[i];
        if (!t->holds || !t->sys.valid || t->sys.syscall_nr != SYS_futex || !g.addr ||
            t->sys.args[0] < g.addr || t->sys.args[0] >= g.addr + g.size)
            continue;
        uint8_t again[GIL_READ_MAX];
        struct gil_state g2;
        if (remote_read(&s->rt->mem, s->gil_addr, again, (size_t)L->gil_size) == 0) {
            gil_decode(s->rt, s->gil_addr, again, cur, &g2);
            if (g2.switch_number != g.switch_number || g2.locked != 1)
                t->sys.syscall_nr = SYSCALL_NONE; /* it held the GIL when sampled */
        }
    }
}

/* Phase 5: the roots that were needed, then every thread's stack. */
static void walk_stacks(struct sampler *s, size_t nroot)
{
    uint32_t n = s->n;
    if (nroot) {
        remote_readv(&s->rt->mem, s->reqs, nroot);
        for (size_t k = 0; k < nroot; k++)
            if (!s->reqs[k].ok)
                s->roots[s->root_of[k]] = 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        /* still: the last walk stands; vanished: nothing to walk */
        s->walks[i].root = s->t[i].still || s->t[i].vanished ? 0 : s->roots[i];
        s->t[i].prev_root = s->roots[i];
    }
    stackwalk_run(s->rt, s->walks, n);
    for (uint32_t i = 0; i < n; i++)
        if (!s->t[i].still)
            s->t[i].walk_ok = !s->walks[i].partial;
}

#define TASK_REREAD_S 0.1

/* The name of the asyncio task a thread's event loop runs, when this
 * sample finds the loop at work (out of its selector: what a stall is
 * spent in, told as the metrics will tell it); NULL otherwise. */
static const char *running_task(struct sampler *s, struct tracked *t, uint32_t stack, long sys)
{
    uint64_t task;
    const char *name;
    if (s->opt->no_asyncio || !s->running || t->metrics_idx >= s->m->nthreads)
        return NULL;
    /* Only inside a busy stretch already half a stall long: the reads cost
     * the target nothing, but they lengthen a sample, and a loop that waits
     * for a CPU looked busier (a healthy loop beside four CPU hogs: 30-37%
     * busy against under 30%) when every busy sample read its task. */
    const struct loop_track *l = &s->m->threads[t->metrics_idx].loop;
    double now = clock_mono_s() - s->start;
    if (!l->in_run || (now - l->run_start) * 1000.0 < s->m->stall_ms / 2 ||
        loops_classify(&s->m->loop_cls, &s->m->stacks, &s->m->threads[t->metrics_idx].loop, stack,
                       sys) != LOOP_BUSY)
        return NULL;
    /* The same stack as at the last read, within TASK_REREAD_S: the same
     * task (another would have taken the loop through its selector code
     * first). A loop stuck in one task is not read at every sample. */
    double mono = clock_mono_s();
    if (stack == t->task_stack && mono - t->task_read < TASK_REREAD_S)
        return t->task[0] ? t->task : NULL;
    t->task_stack = stack;
    t->task_read = mono;
    t->task[0] = 0;
    /* where asyncio keeps it is looked for here, when first needed (not at
     * every attach: a target without a loop never pays for it) */
    asyncio_running_look(s->running, mono);
    if (!asyncio_running_task(s->running, t->tstate, t->loop, &task, &name) || !name)
        return NULL;
    snprintf(t->task, sizeof t->task, "%s", name);
    return t->task;
}

/* The event loop a thread runs, from its last stack: the `self` of
 * BaseEventLoop._run_once (how 3.8-3.13 tell it whatever runs: their
 * running loop is in a thread-local no layout describes). */
static bool loop_in_frames(struct sampler *s, struct tracked *t)
{
    const struct py_layout *L = &s->rt->layout;
    int32_t locals = s->rt->layout.frame_model == FRAME_OBJECTS ? L->frameobj_localsplus
                                                                : L->iframe_localsplus;
    if (locals < 0)
        return false;
    for (int i = 0; i < t->nprev; i++) {
        struct code_info *ci = pyobj_code(s->rt, s->cache, t->prev[i].code);
        if (!ci || !ci->name || !ci->filename || !code_file_ends_with(ci->filename, "asyncio/base_events.py") ||
            strcmp(code_bare_name(ci->name), "_run_once") != 0)
            continue;
        uint64_t self;
        /* (a 3.14+ stack reference carries tag bits) */
        if (!remote_u64(&s->rt->mem, t->prev[i].addr + (uint64_t)locals, &self) || !(self & ~7ULL))
            return false;
        t->loop = self & ~3ULL;
        return true;
    }
    return false;
}

#define TIMERS_EVERY_S 0.05
#define TIMERS_CPU_SHARE 0.01 /* of the time spent reading a loop's timers, at most */
#define TASKS_EVERY_S 1.0
#define LOOP_LOOK_EVERY_S 0.2
/* The timers of the event loop a thread runs, into obs: read every
 * TIMERS_EVERY_S (a big heap less often: its reads take at most
 * TIMERS_CPU_SHARE of the time). A stalled loop's heap cannot change: one
 * read inside a stall tells which timeouts it made expire. The loop object
 * is its thread state's (3.14+) or its _run_once frame's, kept until its
 * timers cannot be read; and once a second, the tasks alive. */
static void read_timers(struct sampler *s, struct tracked *t, uint32_t stack, long sys,
                        struct thread_obs *o)
{
    if (s->opt->no_asyncio || !s->timers || !s->running || t->metrics_idx >= s->m->nthreads)
        return;
    if (loops_classify(&s->m->loop_cls, &s->m->stacks, &s->m->threads[t->metrics_idx].loop, stack,
                       sys) == LOOP_NONE)
        return;
    double mono = clock_mono_s();
    uint64_t ntasks;
    if (mono - t->tasks_counted >= TASKS_EVERY_S) {
        t->tasks_counted = mono;
        if (asyncio_count_tasks(s->counter, t->tstate, mono, &ntasks)) {
            o->tasks = (int64_t)ntasks;
            o->tasks_per_thread = asyncio_count_per_thread(s->counter);
        }
    }
    if (!t->loop) {
        if (mono - t->loop_looked < LOOP_LOOK_EVERY_S)
            return;
        t->loop_looked = mono;
        asyncio_running_look(s->running, mono);
        if (!asyncio_running_loop(s->running, t->tstate, &t->loop) && !loop_in_frames(s, t))
            return;
    }
    if (mono - t->timers_read < t->timers_every)
        return;
    if (!t->timers && !(t->timers = calloc(ASYNCIO_TIMERS_MAX, sizeof *t->timers)))
        return;
    uint64_t total;
    double cpu0 = clock_thread_cpu_s();
    int n = asyncio_timers_read(s->timers, t->loop, t->timers, ASYNCIO_TIMERS_MAX, &total);
    /* a big heap is read less often: at most TIMERS_CPU_SHARE of the time
     * (in CPU: a sampler preempted meanwhile does not slow the reads) */
    t->timers_read = mono;
    t->timers_every = (clock_thread_cpu_s() - cpu0) / TIMERS_CPU_SHARE;
    if (t->timers_every < TIMERS_EVERY_S)
        t->timers_every = TIMERS_EVERY_S;
    if (n < 0) {
        t->loop = 0; /* gone, or not a loop with a timer heap: looked for again */
        return;
    }
    o->timers = t->timers;
    o->ntimers = (uint32_t)n;
    o->timers_total = total;
    o->timers_clock = s->start; /* their deadlines less this: seconds into the run */
}

/* Phase 6: each thread's state and stack, into s->obs. */
static void classify_threads(struct sampler *s, const struct gil_state *gp, bool gil_ok)
{
    const struct gil_state g = *gp;
    uint32_t n = s->n;
    for (uint32_t i = 0; i < n; i++) {
        struct tracked *t = &s->t[i];
        struct task_info ti = t->sys;
        if (ti.syscall_nr == SYSCALL_NONE) {
            ti.state = 'R';
            /* Off CPU inside a futex call on the GIL, as the exact timing
             * counts it: woken from a wait, take_gil has not returned, so it
             * still waits; preempted while waking the next holder, a
             * dropper is handing over (a forced drop waits from the drop),
             * but a new holder waking the dropper holds the GIL. */
            if (ti.woken_in_syscall == SYS_futex && g.addr && ti.args[0] >= g.addr &&
                ti.args[0] < g.addr + g.size && (futex_op_waits(ti.args[1]) || !t->holds)) {
                ti.state = 'S';
                ti.syscall_nr = SYS_futex;
            }
        }
        struct block_info b;
        classify_task(&ti, g.addr, g.size, &b);
        if (b.kind == BLOCK_LOCK) {
            if (b.wait_addr != t->parked_futex) {
                t->parked_futex = b.wait_addr;
                t->parked_lock = parking_lot_lock_key(s->rt, b.wait_addr, ti.sp);
                queue_module_refresh(&s->queue_mod, s->rt->pid, clock_mono_s());
                t->parked_in_queue_get = idle_wait_in_queue_get(&s->queue_mod, &s->rt->mem, ti.sp);
            }
            b.wait_addr = t->parked_lock;
        }
        enum tstate_kind kind = kind_of(t, &b, t->holds, gil_ok && g.locked == 1, s->period_s);
        t->settled = t->next_settled;
        uint32_t stack = stack_of(s, t, &s->walks[i]);
        if (s->opt->native && t->tid)
            stack = native_sample_thread(s->opt->native, s->rt, s->cache, &s->m->stacks, t->tid,
                                         t->tstate, b.kind, stack);
        if (kind == TS_LOCK_WAIT &&
            (t->parked_in_queue_get || idle_classify(&s->idle, &s->m->stacks, stack)))
            kind = TS_IDLE_WAIT;
        t->last_kind = kind;
        /* A thread woken in a syscall is still in it for an event loop: a
         * loop whose epoll_wait returned is in its selector until it runs. */
        long sys = !ti.valid                              ? SYSCALL_UNKNOWN
                   : ti.syscall_nr == SYSCALL_NONE && ti.woken_in_syscall >= 0 ? ti.woken_in_syscall
                                                                          : ti.syscall_nr;
        s->obs[i] = (struct thread_obs){t->metrics_idx, kind,
                                        kind == TS_LOCK_WAIT ? b.wait_addr : 0, stack, sys,
                                        running_task(s, t, stack, sys), NULL, 0, 0, 0, -1, false};
        read_timers(s, t, stack, sys, &s->obs[i]);
    }
}

/* One sample, in as few syscalls as possible:
 * 1. one batched read: the GIL word and, per thread, its stack root and
 *    the top of its previous stack (a "settled" thread - blocked in the
 *    very same syscall at the same place twice in a row - gets only its
 *    top frame read, checked against what it was);
 * 2. each thread's syscall line (not the GIL holder's: it holds the GIL);
 * 3. roots of settled threads that turned out to have moved, if any;
 * 4. the stacks, lockstep, reusing every unchanged frame. */
static void take_sample(struct sampler *s)
{
    const struct py_layout *L = &s->rt->layout;
    uint8_t gilbuf[GIL_READ_MAX];
    pyobj_cache_next_epoch(s->cache);
    uint64_t cur = 0;
    uint32_t n = s->n;
    s->reqs[0] = (struct remote_req){s->gil_addr, gilbuf, (size_t)L->gil_size, false};
    s->reqs[1] = (struct remote_req){s->tstate_current_addr, &cur, 8, false};
    size_t nreq = build_requests(s);
    bool from_bpf = s->reader && read_with_bpf(s, nreq);
    if (!from_bpf)
        remote_readv(&s->rt->mem, s->reqs, nreq);
    s->bpf_samples += from_bpf;
    struct gil_state g = {0};
    bool gil_ok = decode_gil(s, gilbuf, cur, &g);
    size_t nroot = read_views(s, &g, gil_ok, from_bpf);
    recheck_handovers(s, &g, cur);
    walk_stacks(s, nroot);
    classify_threads(s, &g, gil_ok);
    if (s->opt->native)
        native_sample_done(s->opt->native);
    if (gil_ok && g.interval_us)
        s->m->interval_us = g.interval_us;
    /* Held: locked, and its holder is not blocked in the middle of handing
     * it over (the same line the exact eBPF timing draws). */
    bool held = gil_ok && g.locked == 1;
    for (uint32_t i = 0; i < n && held; i++)
        if (s->t[i].holds && s->obs[i].kind != TS_GIL_HELD)
            held = false;
    /* Threads gone since the last refresh leave the sample, and so do
     * thread states made for a thread that has not started (no ident, no
     * TID yet: Python creates the state before the OS thread). */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++)
        if (!s->t[i].vanished && (s->t[i].tid || s->t[i].pthread))
            s->obs[kept++] = s->obs[i];
    struct sample_obs so = {clock_mono_s() - s->start, gil_ok, held ? 1 : 0, g.switch_number, s->obs,
                            kept};
    metrics_observe(s->m, &so);
    if (s->opt->on_sample)
        s->opt->on_sample(s->m, &so, s->opt->sample_arg);
}

/* After a window: exited threads leave the metrics, the live ones keep
 * their records under new indices. */
static void prune_exited(struct sampler *s)
{
    uint32_t *remap = malloc((s->m->nthreads ? s->m->nthreads : 1) * sizeof *remap);
    if (!remap)
        return;
    if (metrics_prune_exited(s->m, remap))
        for (uint32_t i = 0; i < s->n; i++)
            s->t[i].metrics_idx = remap[s->t[i].metrics_idx];
    free(remap);
}

/* Hands the window that ends now to the caller and starts the next. */
static void end_window(struct sampler *s, double *window_start, double now)
{
    const struct sampler_options *opt = s->opt;
    s->m->duration_s = now - *window_start;
    s->m->samples_requested = (uint64_t)(s->m->duration_s * opt->rate_hz + 0.5);
    *window_start = now;
    opt->on_window(s->m, opt->window_arg);
    if (opt->prune_exited)
        prune_exited(s);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Sleeps until CLOCK_MONOTONIC time t, cut short when *flag is set (by
 * the signal that interrupts the sleep) or *stop is; true when cut short. */
static bool sleep_until(double t, volatile sig_atomic_t *flag, volatile sig_atomic_t *stop)
{
    struct timespec ts = clock_timespec(t);
    for (;;) {
        if ((flag && *flag) || (stop && *stop))
            return true;
        if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != EINTR)
            return false;
    }
}

/* Sleeps until the next sample's instant `at`, ending the windows that
 * end meanwhile: on time, or at once when asked (a scrape), not at the
 * next sample - serve's counters step once a window, and steps 2-4 s apart
 * (a window closed at a random sample of a 0.5 Hz rate) read as a 13% dip
 * in a 10 s rate(). */
static void wait_for_sample(struct sampler *s, double *window_start, double at)
{
    const struct sampler_options *opt = s->opt;
    while (opt->on_window && !(opt->stop && *opt->stop)) {
        double due = *window_start + opt->window_s;
        bool asked = sleep_until(due < at ? due : at, opt->end_window_now, opt->stop);
        if (asked && opt->end_window_now && *opt->end_window_now) {
            *opt->end_window_now = 0;
            double t = clock_mono_s();
            if (t - *window_start >= opt->window_min_s)
                end_window(s, window_start, t);
        } else if (due < at && !asked) {
            end_window(s, window_start, clock_mono_s());
        } else if (!asked) {
            break; /* time for the sample */
        }
    }
    sleep_until(at, NULL, opt->stop);
}

/* Samples at a fixed period fall in step with a periodic workload (a timer
 * every 50 ms against a sample every 1 ms): a run then sees the workload's
 * edges at one fixed phase, and its held share was up to 3 points off the
 * exact figure, differently on every run. One sample at a uniformly random
 * instant of each period (stratified sampling) keeps the rate and the
 * resolution and removes that bias. Returns a fraction in [0, 1). */
static double instant_in_period(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (double)(x >> 11) * 0x1.0p-53;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The eBPF reader (one BPF program run per sample) where it works, and
 * the first thread list. GP_OK or refresh's error. */
static int start_reader(struct sampler *sp, struct sampler_cost *cost, struct gp_error *err)
{
    if (sp->opt->no_bpf)
        snprintf(cost->bpf_why, sizeof cost->bpf_why, "eBPF turned off (--no-bpf)");
    else
        sp->reader = bpf_reader_open(sp->rt->pid, sp->rt->start_time, cost->bpf_why,
                                     sizeof cost->bpf_why);
    int r = refresh(sp, err);
    /* The kernel's thread ids are the initial PID namespace's: from inside
     * another namespace they would not match the tracked ones. With more
     * threads than the reader has records for, some tracked threads have
     * none (they are read from /proc): only no match at all means that. */
    bool matched = false;
    /* (a read that saw no thread tells nothing: threads churning under
     * load, between the kernel's list and ours) */
    if (sp->reader && r == GP_OK && sp->n && read_with_bpf(sp, 0) && sp->nrecs)
        for (uint32_t i = 0; i < sp->n && !matched; i++)
            matched = addrmap_get(&sp->rec_of_tid, (uint64_t)sp->t[i].tid) != NULL;
    else
        matched = true;
    if (sp->reader && !matched) {
        /* the records were the reader's memory: none from now on (a
         * record looked up after this read freed memory: a crash under
         * thread churn) */
        sp->recs_fresh = false;
        sp->recs = NULL;
        addrmap_clear(&sp->rec_of_tid);
        bpf_reader_close(sp->reader);
        sp->reader = NULL;
        snprintf(cost->bpf_why, sizeof cost->bpf_why,
                 "the kernel's thread ids do not match this PID namespace's");
    }
    cost->bpf_reader = sp->reader != NULL;
    if (sp->reader)
        snprintf(cost->bpf_why, sizeof cost->bpf_why,
                 "memory and thread states read in one BPF program run per sample");
    return r;
}

/* The tasks of a loop whose count grew, grouped by their coroutine's
 * function (the outermost frame of their chain): what piles up. One read
 * of the registry, at the end of the run, only when a count grew. */
static void group_growing_tasks(struct sampler *s)
{
    struct run_metrics *m = s->m;
    bool any = false;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        loop_tasks_derive(&m->threads[i].loop.tasks);
        any |= m->threads[i].loop.tasks.growing;
    }
    struct asyncio_thread *threads = any ? calloc(s->n ? s->n : 1, sizeof *threads) : NULL;
    if (!threads)
        return;
    for (uint32_t i = 0; i < s->n; i++)
        threads[i] = (struct asyncio_thread){s->t[i].tstate, s->t[i].tid};
    struct asyncio_tasks tasks = {0};
    asyncio_tasks_read(s->rt, s->cache, threads, s->n, &tasks);
    free(threads);
    for (uint32_t i = 0; i < m->nthreads; i++) {
        struct loop_tasks *lt = &m->threads[i].loop.tasks;
        if (lt->growing)
            loop_tasks_group(lt, &m->stacks, &tasks, lt->per_thread ? m->threads[i].tid : 0);
    }
    asyncio_tasks_free(&tasks);
}

static void sampler_free(struct sampler *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        close_tracked(&s->t[i]);
    bpf_reader_close(s->reader);
    asyncio_running_close(s->running);
    asyncio_timers_close(s->timers);
    asyncio_count_close(s->counter);
    addrmap_free(&s->rec_of_tid);
    free(s->t);
    free(s->reqs);
    free(s->still_slot);
    free(s->skipped);
    free(s->roots);
    free(s->walks);
    free(s->obs);
    free(s->root_req);
    free(s->pre_at);
    free(s->pre_n);
    free(s->root_of);
    free(s->resolved);
    free(s->os_tids);
    thread_names_free(&s->names);
    idle_classifier_free(&s->idle);
}

int sampler_run(struct pyrt *rt, struct pyobj_cache *cache, const struct sampler_options *opt,
                struct run_metrics *m, struct sampler_cost *cost, struct gp_error *err)
{
    struct sampler s = {.opt = opt, .rt = rt, .cache = cache, .m = m, .first_refresh = true};
    raise_fd_limit();
    s.gil_addr = gil_locate(rt);
    s.tstate_current_addr = gil_tstate_current_addr(rt);
    s.root_off = stackwalk_root_offset(&rt->layout);
    m->requested_rate_hz = opt->rate_hz;
    m->free_threaded = rt->free_threaded;
    struct task_info main_task;
    if (proc_task_read(rt->pid, rt->pid, &main_task) == 0)
        snprintf(m->process_name, sizeof m->process_name, "%s", main_task.comm);
    m->handoffs_unmeasured = !py_layout_has_gil_counters(&rt->layout);
    addrmap_init(&s.rec_of_tid);
    int r = start_reader(&s, cost, err);
    s.running = asyncio_running_open(rt, cache);
    s.timers = asyncio_timers_open(rt, cache);
    s.counter = asyncio_count_open(rt, cache);
    double period = 1.0 / opt->rate_hz;
    s.period_s = period;
    s.jitter_state = ((uint64_t)getpid() << 32) ^ (uint64_t)(clock_mono_s() * 1e9) ^ 0x9e3779b97f4a7c15ull;
    double cpu0 = cpu_seconds();
    uint64_t calls0 = rt->mem.calls, thread_samples = 0;
    double start = clock_mono_s(), next = start, last_refresh = start, last_progress = start;
    double window_start = start, refresh_every = SAMPLER_REFRESH_S, last_full = start;
    /* at low rates (serve: 1 Hz) a full refresh every few samples */
    double full_every = 5 * period > SAMPLER_FULL_REFRESH_S ? 5 * period : SAMPLER_FULL_REFRESH_S;
    s.start = opt->time_origin > 0 ? opt->time_origin : start;
    m->sample_period_s = period;
    if (opt->on_bounds)
        opt->on_bounds(false, start, opt->bounds_arg);
    double end = start + opt->duration_s;
    while (r == GP_OK && !s.gone && !(opt->stop && *opt->stop)) {
        double now = clock_mono_s();
        if (now >= end)
            break;
        take_sample(&s);
        thread_samples += s.n;
        if (opt->native && opt->native->fatal) {
            *err = opt->native->err;
            r = opt->native->fatal;
            break;
        }
        next += period;
        now = clock_mono_s();
        if (now > next + period) {
            /* Fell behind: skip the ticks that cannot be taken any more. */
            uint64_t skip = (uint64_t)((now - next) / period);
            m->missed += skip;
            next += (double)skip * period;
        }
        /* No Python thread yet (a program just started by `run`): look
         * every sample, so its first instructions are not missed. */
        if (s.n == 0 || now - last_refresh >= refresh_every) {
            double t0 = clock_mono_s();
            /* The thread list is read again when the kernel shows a thread
             * started or ended, and at least every SAMPLER_FULL_REFRESH_S
             * (a Python thread state can also come to an existing thread). */
            if (threads_unchanged(&s) && t0 - last_full < full_every) {
                light_refresh(&s);
                last_refresh = clock_mono_s();
            } else {
                r = refresh(&s, err);
                last_refresh = last_full = clock_mono_s();
                /* A refresh reads a few /proc files per thread: with thousands
                 * of threads it cost more than the samples (2000 threads: 40%
                 * of the time, 3-30 samples/s). Keep it to about a quarter. */
                refresh_every = 3 * (last_refresh - t0);
                if (refresh_every < SAMPLER_REFRESH_S)
                    refresh_every = SAMPLER_REFRESH_S;
                /* no more often than samples are taken (a low-rate serve),
                 * within SAMPLER_REFRESH_MAX_S */
                if (refresh_every < period)
                    refresh_every = period;
                if (refresh_every > SAMPLER_REFRESH_MAX_S)
                    refresh_every = SAMPLER_REFRESH_MAX_S;
            }
        }
        if (opt->progress && now - last_progress >= 0.1) {
            opt->progress(now - start, opt->duration_s, m->samples_taken, opt->progress_arg);
            last_progress = now;
        }
        if (opt->on_window && now - window_start >= opt->window_s)
            end_window(&s, &window_start, now);
        /* The next instant past the end: the run is over at the end (taking
         * samples until then without sleeping put a burst of hundreds at
         * its very end - a thread's state at that moment counted many
         * times over). */
        double at = next + period * instant_in_period(&s.jitter_state);
        if (at >= end) {
            sleep_until(end, NULL, opt->stop);
            break;
        }
        wait_for_sample(&s, &window_start, at);
    }
    double stop = clock_mono_s();
    if (opt->on_bounds)
        opt->on_bounds(true, stop, opt->bounds_arg);
    if (r == GP_OK && !s.gone) {
        refresh(&s, err); /* final CPU counters */
        group_growing_tasks(&s);
    }
    m->duration_s = stop - (opt->on_window ? window_start : start);
    m->started_monotonic_s = opt->on_window ? window_start : start;
    m->process_exited = s.gone;
    m->process_execd = s.execd;
    m->interrupted = opt->stop && *opt->stop;
    m->samples_requested = (uint64_t)(m->duration_s * opt->rate_hz + 0.5);
    cost->cpu_s = cpu_seconds() - cpu0;
    cost->thread_samples = thread_samples;
    cost->us_per_thread_sample = thread_samples ? cost->cpu_s * 1e6 / (double)thread_samples : 0;
    cost->syscalls = rt->mem.calls - calls0;
    cost->bpf_samples = s.bpf_samples;
    cost->still_thread_samples = s.still_samples;
    cost->native = opt->native != NULL;
    if (opt->native)
        native_sampling_stats(opt->native, &cost->native_pause);
    sampler_free(&s);
    return r;
}
