#include "report/fleet.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"

const double fleet_stall_bounds_s[FLEET_STALL_BOUNDS] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
const double fleet_lag_bounds_s[FLEET_LAG_BOUNDS] = {0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5};

void fleet_init(struct fleet *f)
{
    memset(f, 0, sizeof *f);
}

void fleet_free(struct fleet *f)
{
    free(f->t);
    memset(f, 0, sizeof *f);
}

struct fleet_target *fleet_find(struct fleet *f, pid_t pid)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (f->t[i].pid == pid)
            return &f->t[i];
    return NULL;
}

struct fleet_target *fleet_target(struct fleet *f, pid_t pid)
{
    struct fleet_target *t = fleet_find(f, pid);
    if (t)
        return t;
    size_t ncap = grow_for(&f->t, sizeof *f->t, f->n, f->cap, 8);
    if (!ncap)
        return NULL;
    f->cap = (uint32_t)ncap;
    t = &f->t[f->n++];
    memset(t, 0, sizeof *t);
    t->pid = pid;
    t->tasks = -1;
    t->gil_enabled = true;
    return t;
}

void fleet_remove(struct fleet *f, pid_t pid)
{
    struct fleet_target *t = fleet_find(f, pid);
    if (!t)
        return;
    *t = f->t[--f->n];
}

static double dbl(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : 0;
}

static uint64_t u64(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    int64_t x = json_object_get_int64(v);
    return x > 0 ? (uint64_t)x : 0;
}

static const char *str(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : "";
}

static json_object *arr(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array) ? v
                                                                                          : NULL;
}

/* Seconds count only when they are a number of seconds: a garbled line
 * must not make a counter go backwards or to infinity. */
static double secs(double v)
{
    return v > 0 && v < 1e6 ? v : 0;
}

static void apply_info(struct fleet_target *t, json_object *o)
{
    t->info_seen = true;
    snprintf(t->exe, sizeof t->exe, "%s", str(o, "exe"));
    snprintf(t->python_version, sizeof t->python_version, "%s", str(o, "python_version"));
    json_object *v;
    t->free_threaded = json_object_object_get_ex(o, "free_threaded", &v) && json_object_get_boolean(v);
    snprintf(t->ids.container_id, sizeof t->ids.container_id, "%s", str(o, "container_id"));
    snprintf(t->ids.pod_uid, sizeof t->ids.pod_uid, "%s", str(o, "pod_uid"));
}

static void add_hist(struct fleet_hist *h, json_object *g, const char *le, const char *count,
                     const char *sum)
{
    json_object *a = arr(g, le);
    if (!a || json_object_array_length(a) != EXACT_LE_BOUNDS + 1)
        return;
    for (size_t i = 0; i <= EXACT_LE_BOUNDS; i++) {
        int64_t c = json_object_get_int64(json_object_array_get_idx(a, i));
        h->le[i] += c > 0 ? (uint64_t)c : 0;
    }
    h->count += u64(g, count);
    h->sum_s += secs(dbl(g, sum));
}

static void apply_gil(struct fleet_target *t, json_object *g)
{
    t->held_s += secs(dbl(g, "held_s"));
    t->contended_s += secs(dbl(g, "contended_s"));
    t->handoffs += u64(g, "handoffs");
    json_object *v;
    if (json_object_object_get_ex(g, "exact", &v) && json_object_get_boolean(v)) {
        t->exact = true;
        t->acquisitions += u64(g, "acquisitions");
        add_hist(&t->wait, g, "wait_le", "wait_count", "wait_sum_s");
        add_hist(&t->hold, g, "hold_le", "hold_count", "hold_sum_s");
    }
}

/* The label a name is counted under: its own while there is room, else
 * "other" (the last slot). */
static uint32_t slot_for(char (*names)[FLEET_LABEL_MAX], size_t stride, uint32_t *n, uint32_t max,
                         const char *name)
{
    for (uint32_t i = 0; i < *n; i++) {
        const char *have = (const char *)names + i * stride;
        if (strncmp(have, name, FLEET_LABEL_MAX - 1) == 0)
            return i;
    }
    if (*n < max) {
        char *slot = (char *)names + (*n) * stride;
        snprintf(slot, FLEET_LABEL_MAX, "%s", name);
        return (*n)++;
    }
    char *other = (char *)names + max * stride;
    snprintf(other, FLEET_LABEL_MAX, "other");
    return max;
}

static void apply_threads(struct fleet_target *t, json_object *a)
{
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        json_object *o = json_object_array_get_idx(a, i);
        json_object *st;
        if (json_object_object_get_ex(o, "states", &st))
            for (int k = 0; k < TS_COUNT; k++)
                t->state_s[k] += secs(dbl(st, tstate_kind_key((enum tstate_kind)k)));
        double wait = secs(dbl(o, "gil_wait_s")), held = secs(dbl(o, "gil_held_s"));
        if (wait <= 0 && held <= 0)
            continue; /* a label only for threads that touch the GIL */
        uint32_t k = slot_for(&t->threads[0].name, sizeof t->threads[0], &t->nthreads,
                              FLEET_THREAD_LABELS, str(o, "name")[0] ? str(o, "name") : "unnamed");
        t->threads[k].gil_wait_s += wait;
        t->threads[k].gil_held_s += held;
    }
}

static void apply_locks(struct fleet_target *t, json_object *a)
{
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        json_object *o = json_object_array_get_idx(a, i);
        uint32_t k = slot_for(&t->locks[0].name, sizeof t->locks[0], &t->nlocks, FLEET_LOCK_LABELS,
                              str(o, "site"));
        t->locks[k].s += secs(dbl(o, "wait_s"));
    }
}

/* A loop's timers and tasks of one window: timer lateness by bucket,
 * expired timeouts, the task count (the process's is counted once). */
static void apply_loop_timers(struct fleet_target *t, json_object *o, bool *process_tasks)
{
    json_object *le = arr(o, "timer_lag_le");
    for (size_t b = 0; le && b <= FLEET_LAG_BOUNDS && b < json_object_array_length(le); b++) {
        int64_t v = json_object_get_int64(json_object_array_get_idx(le, b));
        t->lag_le[b] += v > 0 ? (uint64_t)v : 0;
        t->timers_seen = true;
    }
    t->lag_sum_s += secs(dbl(o, "timer_lag_sum_s"));
    double expired = dbl(o, "timeouts_expired"), in_stalls = dbl(o, "timeouts_expired_in_stalls");
    if (expired >= in_stalls && in_stalls >= 0) {
        t->timeouts_expired[0] += (uint64_t)(expired - in_stalls);
        t->timeouts_expired[1] += (uint64_t)in_stalls;
    }
    json_object *n;
    bool per_thread = json_object_get_boolean(json_object_object_get(o, "tasks_per_thread"));
    if (json_object_object_get_ex(o, "tasks", &n) && json_object_is_type(n, json_type_int) &&
        (per_thread || !*process_tasks)) {
        t->tasks = (t->tasks < 0 ? 0 : t->tasks) + json_object_get_int64(n);
        *process_tasks |= !per_thread;
    }
}

static void apply_loops(struct fleet_target *t, json_object *a)
{
    bool process_tasks = false;
    t->tasks = -1;
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        json_object *o = json_object_array_get_idx(a, i);
        apply_loop_timers(t, o, &process_tasks);
        t->loops_seen = true;
        t->loop_busy_s += secs(dbl(o, "busy_s"));
        json_object *st = arr(o, "stalls_s");
        for (size_t k = 0; st && k < json_object_array_length(st); k++) {
            double s = secs(json_object_get_double(json_object_array_get_idx(st, k)));
            uint32_t b = 0;
            while (b < FLEET_STALL_BOUNDS && s > fleet_stall_bounds_s[b])
                b++;
            t->stall_le[b]++;
            t->stall_count++;
            t->stall_sum_s += s;
        }
    }
}

static void apply_findings(struct fleet_target *t, json_object *a)
{
    t->nfindings = 0;
    for (size_t i = 0; i < json_object_array_length(a) && t->nfindings < FLEET_FINDINGS; i++) {
        json_object *o = json_object_array_get_idx(a, i);
        snprintf(t->findings[t->nfindings].scenario, sizeof t->findings[0].scenario, "%s",
                 str(o, "scenario"));
        snprintf(t->findings[t->nfindings].severity, sizeof t->findings[0].severity, "%s",
                 str(o, "severity"));
        t->nfindings++;
    }
}

bool fleet_apply_line(struct fleet_target *t, const char *line)
{
    json_object *o = json_tokener_parse(line);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return false;
    }
    json_object *v;
    if (json_object_object_get_ex(o, "python_version", &v)) {
        apply_info(t, o);
    } else if ((v = arr(o, "findings"))) {
        apply_findings(t, v);
    } else if (json_object_object_get_ex(o, "gil", &v)) {
        t->records++;
        t->samples += u64(o, "samples");
        json_object *e;
        if (json_object_object_get_ex(o, "errors", &e)) {
            t->missed_ticks += u64(e, "missed_tick");
            t->gil_unreadable += u64(e, "gil_unreadable");
        }
        json_object *ge;
        if (json_object_object_get_ex(o, "python_threads", &ge)) {
            t->python_threads = (uint32_t)u64(o, "python_threads");
            t->os_threads = (uint32_t)u64(o, "os_threads");
        }
        if (json_object_object_get_ex(o, "gil_enabled", &ge))
            t->gil_enabled = json_object_get_boolean(ge);
        apply_gil(t, v);
        apply_threads(t, arr(o, "threads"));
        apply_locks(t, arr(o, "locks"));
        apply_loops(t, arr(o, "loops"));
    } else {
        json_object_put(o);
        return false;
    }
    json_object_put(o);
    return true;
}
