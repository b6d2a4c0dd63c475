/* An event loop's task count over time: see record/loop_tasks.h. */
#include "record/loop_tasks.h"

#include <string.h>

/* A steady rise: at least this many tasks per second, a line explaining
 * most of the variation, over a few seconds, by a meaningful amount (a
 * loop holding 1000 tasks that gains 5 is not leaking). */
#define GROWTH_MIN_PER_S 1.0
#define GROWTH_MIN_R2 0.8
#define GROWTH_MIN_SPAN_S 3.0
#define GROWTH_MIN_TASKS 20
#define GROWTH_MIN_SHARE 0.2

void loop_tasks_add(struct loop_tasks *lt, double t, uint32_t n, bool per_thread)
{
    lt->seen = true;
    lt->per_thread = per_thread;
    lt->last = n;
    if (n > lt->max)
        lt->max = n;
    if (!lt->stride)
        lt->stride = 1;
    if (lt->skip++ % lt->stride)
        return;
    if (lt->n == LOOP_TASK_POINTS) {
        for (uint32_t i = 0; i < LOOP_TASK_POINTS / 2; i++)
            lt->v[i] = lt->v[2 * i];
        lt->n = LOOP_TASK_POINTS / 2;
        lt->stride *= 2;
        lt->skip = 1;
    }
    lt->v[lt->n++] = (struct loop_task_point){t, n};
}

void loop_tasks_derive(struct loop_tasks *lt)
{
    lt->growth_per_s = lt->fit_r2 = 0;
    lt->growing = false;
    if (lt->n < 3)
        return;
    double st = 0, sn = 0, stt = 0, stn = 0, snn = 0, k = lt->n;
    for (uint32_t i = 0; i < lt->n; i++) {
        double t = lt->v[i].t, n = lt->v[i].n;
        st += t;
        sn += n;
        stt += t * t;
        stn += t * n;
        snn += n * n;
    }
    double vt = stt - st * st / k, vn = snn - sn * sn / k, cov = stn - st * sn / k;
    if (vt <= 0)
        return;
    lt->growth_per_s = cov / vt;
    lt->fit_r2 = vn > 0 ? cov * cov / (vt * vn) : 0;
    double span = lt->v[lt->n - 1].t - lt->v[0].t, first = lt->v[0].n;
    double rise = (double)lt->v[lt->n - 1].n - first;
    lt->growing = span >= GROWTH_MIN_SPAN_S && lt->growth_per_s >= GROWTH_MIN_PER_S &&
                  lt->fit_r2 >= GROWTH_MIN_R2 && rise >= GROWTH_MIN_TASKS &&
                  rise >= GROWTH_MIN_SHARE * first;
}

void loop_tasks_group(struct loop_tasks *lt, struct stack_table *stacks,
                      const struct asyncio_tasks *tasks, int32_t tid)
{
    /* a handful of distinct functions in practice: a short list, searched */
    struct {
        struct code_info *code;
        uint32_t count;
    } g[64];
    uint32_t ng = 0, other = 0;
    lt->grouped = 0;
    for (uint32_t i = 0; i < tasks->n; i++) {
        const struct asyncio_task *t = &tasks->v[i];
        if ((tid && t->tid != tid) || t->state == TASK_FINISHED || t->state == TASK_CANCELLED)
            continue;
        lt->grouped++;
        struct code_info *code = t->nframes ? t->frames[t->nframes - 1].code : NULL;
        uint32_t k = 0;
        while (k < ng && g[k].code != code)
            k++;
        if (k == ng) {
            if (ng == sizeof g / sizeof g[0]) {
                other++;
                continue;
            }
            g[ng].code = code;
            g[ng++].count = 0;
        }
        g[k].count++;
    }
    lt->ngroups = 0;
    while (lt->ngroups < LOOP_TASK_GROUPS) {
        uint32_t best = ng;
        for (uint32_t k = 0; k < ng; k++)
            if (g[k].count && (best == ng || g[k].count > g[best].count))
                best = k;
        if (best == ng)
            break;
        struct py_frame f = {g[best].code, g[best].code ? g[best].code->firstlineno : -1, false};
        lt->groups[lt->ngroups++] = (struct loop_task_group){
            g[best].code ? stack_table_intern(stacks, &f, 1) : 0, g[best].count};
        g[best].count = 0;
    }
    (void)other;
}

void loop_tasks_window_reset(struct loop_tasks *lt)
{
    if (!lt->n)
        return;
    struct loop_task_point last = lt->v[lt->n - 1];
    lt->v[0] = last;
    lt->n = 1;
    lt->stride = 1;
    lt->skip = 1;
    lt->max = last.n;
    lt->ngroups = lt->grouped = 0;
    lt->growth_per_s = lt->fit_r2 = 0;
    lt->growing = false;
}
