/* asyncio tasks as text and JSON: see report/tasks.h. */
#include "report/tasks.h"

#include <inttypes.h>
#include <stdlib.h>

#include "record/stacks.h"
#include "report/common.h"

#define TASK_LOOPS_MAX 64
#define TREE_DEPTH_MAX 32 /* indentation stops growing here */

/* The distinct loops of the tasks, in order of first appearance; at most
 * max (the rest are counted in the last). */
static size_t task_loops(const struct asyncio_tasks *t, uint64_t *loops, size_t max)
{
    size_t n = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        size_t k = 0;
        while (k < n && loops[k] != t->v[i].loop)
            k++;
        if (k == n && n < max)
            loops[n++] = t->v[i].loop;
    }
    return n;
}

/* The thread of a loop: that of its tasks' list (3.14+); 0 when unknown. */
static int32_t loop_tid(const struct asyncio_tasks *t, uint64_t loop)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (t->v[i].loop == loop && t->v[i].tid)
            return t->v[i].tid;
    return 0;
}

/* Whether task k is awaited by the task at addr. */
static bool awaited_by(const struct asyncio_task *k, uint64_t addr)
{
    for (int i = 0; i < k->nawaited_by; i++)
        if (k->awaited_by[i] == addr)
            return true;
    return false;
}

/* Whether any of k's awaiters is listed in the same loop (else it is a
 * root of the loop's tree). */
static bool has_listed_awaiter(const struct asyncio_tasks *t, const struct asyncio_task *k)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (t->v[i].loop == k->loop && awaited_by(k, t->v[i].addr))
            return true;
    return false;
}

static void task_line(FILE *out, const struct asyncio_task *k, int depth, double read_at)
{
    int pad = 4 + 4 * (depth < TREE_DEPTH_MAX ? depth : TREE_DEPTH_MAX);
    fprintf(out, "%*stask 0x%" PRIx64 " \"%s\"  %s", pad, "", k->addr, k->name,
            asyncio_task_state_name(k->state));
    if (k->await_kind != AWAIT_NONE) {
        fprintf(out, "  awaiting %s", asyncio_await_kind_name(k->await_kind));
        if (k->waiter)
            fprintf(out, " 0x%" PRIx64, k->waiter);
    }
    if (k->has_deadline)
        fprintf(out, k->deadline >= read_at ? "  times out in %.3f s" : "  timed out %.3f s ago",
                k->deadline >= read_at ? k->deadline - read_at : read_at - k->deadline);
    fprintf(out, "%s\n", k->native ? "" : "  (pure-Python Task)");
    for (int f = 0; f < k->nframes; f++) {
        char frame[512];
        stack_frame_text(&k->frames[f], frame, sizeof frame);
        fprintf(out, "%*s%s\n", pad + 4, "", frame);
    }
    if (k->frames_truncated)
        fprintf(out, "%*s...\n", pad + 4, "");
}

/* k and, under it, the tasks that k awaits - each task once (done marks
 * those printed: a task awaited by two is shown under the first). */
static void task_tree(FILE *out, const struct asyncio_tasks *t, uint32_t i, int depth, bool *done)
{
    const struct asyncio_task *k = &t->v[i];
    done[i] = true;
    task_line(out, k, depth, t->read_at);
    for (uint32_t j = 0; j < t->n; j++)
        if (!done[j] && t->v[j].loop == k->loop && awaited_by(&t->v[j], k->addr))
            task_tree(out, t, j, depth + 1, done);
}

void report_tasks_text(FILE *out, const struct asyncio_tasks *t)
{
    if (t->why_none) {
        fprintf(out, "\nasyncio tasks: not read (%s)\n", t->why_none);
        return;
    }
    uint64_t loops[TASK_LOOPS_MAX];
    size_t nloops = task_loops(t, loops, TASK_LOOPS_MAX);
    fprintf(out, "\nasyncio tasks: %u in %zu loop%s%s\n", t->n, nloops, nloops == 1 ? "" : "s",
            t->truncated ? " (more not listed)" : "");
    if (t->why_no_frames)
        fprintf(out, "  (coroutine chains not read: %s)\n", t->why_no_frames);
    bool *done = calloc(t->n ? t->n : 1, sizeof *done);
    if (!done)
        return;
    for (size_t l = 0; l < nloops; l++) {
        int32_t tid = loop_tid(t, loops[l]);
        if (tid)
            fprintf(out, "  loop 0x%" PRIx64 " (thread %d)\n", loops[l], tid);
        else
            fprintf(out, "  loop 0x%" PRIx64 "\n", loops[l]);
        for (uint32_t i = 0; i < t->n; i++)
            if (!done[i] && t->v[i].loop == loops[l] && !has_listed_awaiter(t, &t->v[i]))
                task_tree(out, t, i, 0, done);
        /* awaits in a cycle have no root: shown flat */
        for (uint32_t i = 0; i < t->n; i++)
            if (!done[i] && t->v[i].loop == loops[l])
                task_tree(out, t, i, 0, done);
    }
    free(done);
}

static json_object *task_json(const struct asyncio_task *k, double read_at)
{
    json_object *to = json_object_new_object();
    json_object_object_add(to, "id", report_json_hex(k->addr));
    json_object_object_add(to, "name", json_object_new_string(k->name));
    json_object_object_add(to, "state", json_object_new_string(asyncio_task_state_name(k->state)));
    json_object_object_add(to, "native", json_object_new_boolean(k->native));
    json_object *aw = NULL;
    if (k->await_kind != AWAIT_NONE) {
        aw = json_object_new_object();
        json_object_object_add(aw, "kind", json_object_new_string(asyncio_await_kind_name(k->await_kind)));
        json_object_object_add(aw, "id", k->waiter ? report_json_hex(k->waiter) : NULL);
    }
    json_object_object_add(to, "awaiting", aw);
    json_object_object_add(to, "deadline_s", k->has_deadline ? json_object_new_double(k->deadline - read_at) : NULL);
    json_object_object_add(to, "frames", report_json_frames(k->frames, k->nframes));
    json_object_object_add(to, "frames_complete", json_object_new_boolean(!k->frames_truncated));
    json_object *by = json_object_new_array();
    for (int i = 0; i < k->nawaited_by; i++)
        json_object_array_add(by, report_json_hex(k->awaited_by[i]));
    json_object_object_add(to, "awaited_by", by);
    return to;
}

json_object *report_tasks_json(const struct asyncio_tasks *t)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "unavailable", t->why_none ? json_object_new_string(t->why_none) : NULL);
    json_object_object_add(o, "frames_unavailable",
                           t->why_no_frames ? json_object_new_string(t->why_no_frames) : NULL);
    json_object_object_add(o, "count", json_object_new_int((int)t->n));
    json_object_object_add(o, "truncated", json_object_new_boolean(t->truncated));
    json_object *loops_json = json_object_new_array();
    uint64_t loops[TASK_LOOPS_MAX];
    size_t nloops = t->why_none ? 0 : task_loops(t, loops, TASK_LOOPS_MAX);
    for (size_t l = 0; l < nloops; l++) {
        json_object *lo = json_object_new_object();
        json_object_object_add(lo, "loop", report_json_hex(loops[l]));
        int32_t tid = loop_tid(t, loops[l]);
        json_object_object_add(lo, "tid", tid ? json_object_new_int(tid) : NULL);
        json_object *arr = json_object_new_array();
        for (uint32_t i = 0; i < t->n; i++)
            if (t->v[i].loop == loops[l])
                json_object_array_add(arr, task_json(&t->v[i], t->read_at));
        json_object_object_add(lo, "tasks", arr);
        json_object_array_add(loops_json, lo);
    }
    json_object_object_add(o, "loops", loops_json);
    return o;
}
