/* `gilprobe dump`: one snapshot of every Python thread, with its kernel
 * state and what it is blocked on. */
#ifndef GILPROBE_DUMP_H
#define GILPROBE_DUMP_H
#include <stdbool.h>
#include <stdio.h>

#include "classify.h"
#include "pyrt.h"
#include "snapshot.h"

#define DUMP_SCHEMA_VERSION 1

struct dump_thread {
    const struct py_thread *py;
    struct task_info task;
    struct block_info block;
    bool is_main;
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
};

struct dump_options {
    pid_t pid;
    bool json;
    bool blocking;
    bool stats;         /* cost of the read on stderr */
    const char *output; /* NULL: stdout */
};

int cmd_dump(const struct dump_options *opt, struct gp_error *err);
void report_dump_text(FILE *out, const struct dump *d);
/* 0, or -1 when the JSON could not be built or written. */
int report_dump_json(FILE *out, const struct dump *d);

#endif
