#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "python/parking_lot.h"
#include "report/common.h"
#include "report/dump.h"
#include "sample/dump.h"
#include "sample/idle_wait.h"
#include "target/stopper.h"

/* Test-only: hold the target (stopped with --blocking) this long between
 * attaching and reading, so tests can interrupt or kill mid-dump. */
#define TEST_PAUSE_ENV "GILPROBE_TEST_PAUSE_MS"

static void test_pause(void)
{
    const char *v = getenv(TEST_PAUSE_ENV);
    long ms = v ? strtol(v, NULL, 10) : 0;
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}

static int cmp_thread(const void *a, const void *b)
{
    const struct dump_thread *x = a, *y = b;
    return (x->py->tid > y->py->tid) - (x->py->tid < y->py->tid);
}

/* Kernel view of every OS thread, read before any ptrace stop so that the
 * states and syscalls are the target's own. */
static struct task_info *read_tasks(pid_t pid, size_t *n, struct gp_error *err)
{
    pid_t *tids;
    int r = proc_list_tasks(pid, &tids, n);
    if (r < 0) {
        gp_error_from_errno(err, -r, pid, "the thread list");
        return NULL;
    }
    struct task_info *tasks = calloc(*n ? *n : 1, sizeof *tasks);
    for (size_t i = 0; tasks && i < *n; i++) {
        r = proc_task_read(pid, tids[i], &tasks[i]);
        if (r == -EACCES || r == -EPERM) {
            gp_error_from_errno(err, -r, pid, "thread states");
            free(tasks);
            tasks = NULL;
        }
    }
    free(tids);
    if (!tasks && err->code == GP_OK)
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory reading the thread list");
    return tasks;
}

static int build_dump(struct dump *d, struct pyrt *rt, const struct task_info *tasks,
                      size_t ntasks, const struct thread_names *names)
{
    d->nthreads = d->snap.nthreads;
    d->threads = calloc(d->nthreads ? d->nthreads : 1, sizeof *d->threads);
    if (!d->threads)
        return -1;
    d->os_threads = ntasks;
    struct queue_module queue_mod = {0};
    for (size_t i = 0; i < d->nthreads; i++) {
        struct dump_thread *t = &d->threads[i];
        t->py = &d->snap.threads[i];
        t->is_main = t->py->tid == d->pid;
        for (size_t k = 0; k < ntasks; k++)
            if (tasks[k].tid == t->py->tid && t->py->tid)
                t->task = tasks[k];
        if (!t->task.valid)
            snprintf(t->task.comm, sizeof t->task.comm, "?");
        const char *pyname = thread_names_find(names, t->py->pthread, &t->python_name_why);
        snprintf(t->python_name, sizeof t->python_name, "%s", pyname ? pyname : "");
        classify_task(&t->task, d->snap.gil.addr, d->snap.gil.size, &t->block);
        if (t->block.kind == BLOCK_LOCK) {
            t->block.wait_addr = parking_lot_lock_key(rt, t->block.wait_addr, t->task.sp);
            struct stack_entry e = {.frames = t->py->frames, .nframes = t->py->nframes};
            if (!(t->idle = idle_wait_stack(&e))) {
                queue_module_refresh(&queue_mod, d->pid, 0);
                t->idle = idle_wait_in_queue_get(&queue_mod, &rt->mem, t->task.sp);
            }
        }
        if (d->py_native) {
            t->native = &d->py_native[i];
            t->native->agrees = native_state_agrees(t->native->state, t->block.kind);
        }
        if (t->py->holds_gil)
            d->gil_holder_tid = t->py->tid;
    }
    qsort(d->threads, d->nthreads, sizeof *d->threads, cmp_thread);
    return 0;
}

/* The asyncio tasks (3.14+: from each thread's own list). */
static void read_tasks_of(struct pyrt *rt, struct pyobj_cache *cache, struct dump *d)
{
    size_t n = d->snap.nthreads;
    struct asyncio_thread *threads = calloc(n ? n : 1, sizeof *threads);
    for (size_t i = 0; threads && i < n; i++)
        threads[i] = (struct asyncio_thread){d->snap.threads[i].tstate, d->snap.threads[i].tid};
    asyncio_tasks_read(rt, cache, threads, threads ? n : 0, &d->tasks);
    free(threads);
}

static int as_json(FILE *out, const void *report)
{
    return report_dump_json(out, report);
}

static void as_text(FILE *out, const void *report)
{
    report_dump_text(out, report);
}

int cmd_dump(const struct dump_options *opt, struct gp_error *err)
{
    struct pyrt rt;
    int r = cli_attach(opt->pid, &rt, err);
    if (r != GP_OK)
        return r;
    struct dump d;
    memset(&d, 0, sizeof d);
    d.pid = opt->pid;
    d.rt = &rt;
    d.blocking = opt->blocking;
    proc_cmdline(opt->pid, d.cmdline, sizeof d.cmdline);

    size_t ntasks = 0;
    struct task_info *tasks = read_tasks(opt->pid, &ntasks, err);
    if (!tasks)
        return err->code;
    if (opt->blocking && (r = stopper_stop_all(opt->pid, STOPPER_DEFAULT_TIMEOUT_MS, err)) != GP_OK) {
        free(tasks);
        return r;
    }
    test_pause();
    struct pyobj_cache cache;
    pyobj_cache_init(&cache);
    r = snapshot_take(&rt, &cache, true, &d.snap, err);
    struct thread_names names;
    thread_names_init(&names);
    if (r == GP_OK)
        thread_names_read(&rt, &cache, &names);
    d.want_tasks = opt->tasks;
    if (r == GP_OK && opt->tasks)
        read_tasks_of(&rt, &cache, &d);
    d.native = opt->native;
    if (r == GP_OK && opt->native)
        r = dump_native_collect(&d, &rt, &cache, tasks, ntasks, opt->blocking, err);
    if (opt->blocking)
        d.paused_us = stopper_resume_all();
    if (opt->stats)
        fprintf(stderr, "gilprobe: stats bytes=%lu syscalls=%lu code_objects=%zu strings=%zu\n",
                (unsigned long)rt.mem.bytes, (unsigned long)rt.mem.calls, cache.codes.len,
                cache.strings.len);
    if (r == GP_OK && (proc_exists(opt->pid) != 0 || proc_start_time(opt->pid) != rt.start_time)) {
        gp_error_set(err, GP_ERR_EXITED,
                     "process %d exited while gilprobe was reading it; nothing to report",
                     opt->pid);
        r = err->code;
    }
    if (r == GP_OK && build_dump(&d, &rt, tasks, ntasks, &names) != 0) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory building the report");
        r = err->code;
    }
    if (r == GP_OK)
        r = report_write(opt->output, opt->json, as_json, as_text, &d, err);
    free(d.threads);
    thread_names_free(&names);
    asyncio_tasks_free(&d.tasks);
    dump_native_free(&d);
    snapshot_free(&d.snap);
    pyobj_cache_free(&cache);
    free(tasks);
    return r;
}
