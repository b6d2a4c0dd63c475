/* An event loop's task count over time (python/asyncio_count.h, read once
 * a second) and whether it grows steadily: tasks created faster than they
 * finish. The series is kept in a fixed number of points - when full,
 * every other point goes and the spacing doubles - so a run of any length
 * costs the same memory. The tasks that make the count are grouped by
 * their coroutine's function when it grows (read once, at the end). */
#ifndef GILPROBE_LOOP_TASKS_H
#define GILPROBE_LOOP_TASKS_H
#include <stdbool.h>
#include <stdint.h>

#include "python/asyncio_tasks.h"
#include "record/stacks.h"

#define LOOP_TASK_POINTS 256
#define LOOP_TASK_GROUPS 3

struct loop_task_point {
    double t; /* seconds into the run */
    uint32_t n;
};

struct loop_task_group {
    uint32_t frame; /* interned one-frame stack: the task's coroutine function (0:
                       unknown) */
    uint32_t count;
};

struct loop_tasks {
    bool seen;       /* counted at least once */
    bool per_thread; /* the count is the loop thread's (3.14+), else the process's
                      */
    struct loop_task_point v[LOOP_TASK_POINTS];
    uint32_t n;
    uint32_t stride, skip; /* one count in `stride` is kept */
    uint32_t last, max;
    /* the largest groups of the tasks alive at the end, when it grew */
    struct loop_task_group groups[LOOP_TASK_GROUPS];
    uint32_t ngroups, grouped; /* groups kept; tasks read to make them */
    /* derived */
    double growth_per_s, fit_r2;
    bool growing;
};

void loop_tasks_add(struct loop_tasks *lt, double t, uint32_t n, bool per_thread);
/* Fits the series: growth per second and how well a line explains it;
 * growing when the count rose steadily by a meaningful amount. */
void loop_tasks_derive(struct loop_tasks *lt);
/* Groups the tasks read (those of thread tid; 0: all) by their
 * coroutine's function, the largest groups kept. */
void loop_tasks_group(struct loop_tasks *lt, struct stack_table *stacks,
                      const struct asyncio_tasks *tasks, int32_t tid);
/* A new window keeps the last count as its first point. */
void loop_tasks_window_reset(struct loop_tasks *lt);

#endif
