/* `gilprobe dump`: one snapshot of every Python thread, with its kernel
 * state and what it is blocked on. */
#ifndef GILPROBE_DUMP_H
#define GILPROBE_DUMP_H
#include <stdbool.h>
#include <stdio.h>

#include "native/merge.h"
#include "python/asyncio_tasks.h"
#include "python/classify.h"
#include "python/pyrt.h"
#include "python/snapshot.h"
#include "python/thread_names.h"

#define DUMP_SCHEMA_VERSION 1

/* --native: one thread's C stack, merged with its Python frames. */
struct dump_native {
    bool ok;
    char why[sizeof(((struct gp_error *)0)->msg)]; /* when not ok */
    struct native_stack *stack;
    struct mixed_stack mixed;
    enum native_state state;
    bool agrees;               /* with the syscall-based classification */
};

/* A thread with no Python thread state (started by a C library). */
struct dump_native_thread {
    struct task_info task;
    struct block_info block;
    struct dump_native native;
};

struct dump_thread {
    const struct py_thread *py;
    struct dump_native *native; /* NULL without --native */
    struct task_info task;
    struct block_info block;
    bool idle;   /* a lock-like wait for work or a notification (idle_wait.h) */
    bool is_main;
    char python_name[THREAD_NAME_MAX]; /* threading.Thread.name; "" when none */
    const char *python_name_why;       /* why there is none (NULL when there is) */
};

struct dump {
    pid_t pid;
    char cmdline[1024];
    const struct pyrt *rt;
    struct snapshot snap;
    struct dump_thread *threads; /* sorted by TID */
    size_t nthreads;
    size_t os_threads;
    pid_t gil_holder_tid;        /* 0 when free or unknown */
    bool blocking;
    uint64_t paused_us;          /* how long --blocking stopped the target */
    bool native;
    struct native_session *ns;
    struct dump_native *py_native;        /* per snapshot thread */
    struct dump_native_thread *native_only;
    size_t nnative_only;
    uint64_t native_pause_total_ns, native_pause_max_ns; /* per-thread stops */
    unsigned native_stops;
    bool want_tasks;             /* --tasks */
    struct asyncio_tasks tasks;
};

/* --native: stops each thread alone (unless already_stopped), unwinds it
 * and re-reads its Python stack meanwhile; also lists threads without a
 * Python thread state. GP_OK or an exit code (permission). */
int dump_native_collect(struct dump *d, struct pyrt *rt, struct pyobj_cache *cache,
                        const struct task_info *tasks, size_t ntasks, bool already_stopped,
                        struct gp_error *err);
void dump_native_free(struct dump *d);

/* 0, or -1 when the JSON could not be built or written. */
int report_dump_json(FILE *out, const struct dump *d);

#endif
