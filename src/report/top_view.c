#include "report/top_view.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/blame_report.h"
#include "report/common.h"
#include "target/proc.h"

static const char *const SORT_NAMES[TOP_SORT_COUNT] = {"gil-wait", "held", "cpu",
                                                       "lock",     "tid",  "name"};

int top_sort_parse(const char *s, enum top_sort *out)
{
    for (int i = 0; i < TOP_SORT_COUNT; i++)
        if (strcmp(s, SORT_NAMES[i]) == 0) {
            *out = (enum top_sort)i;
            return 0;
        }
    return -1;
}

const char *top_sort_name(enum top_sort s)
{
    return s < TOP_SORT_COUNT ? SORT_NAMES[s] : "?";
}

const char *top_sort_keys(void)
{
    return "gil-wait, held, cpu, lock, tid, name";
}

void top_view_init(struct top_view *v, pid_t pid, const struct pyrt *rt, double interval_s,
                   enum top_sort sort)
{
    memset(v, 0, sizeof *v);
    v->pid = pid;
    v->interval_s = interval_s;
    v->sort = sort;
    snprintf(v->version, sizeof v->version, "%s%s", rt->version,
             rt->unknown_version ? " (untested version)" : "");
    if (proc_cmdline(pid, v->cmdline, sizeof v->cmdline) != 0)
        v->cmdline[0] = '\0';
}

void top_view_free(struct top_view *v)
{
    free(v->rows);
    v->rows = NULL;
    v->nrows = v->caprows = 0;
}

/* "func (file.py:line)": the report's frame with the file's directory left
 * out, so that the line number fits on a terminal's row. */
static void format_frame_short(const struct py_frame *f, char *buf, size_t sz)
{
    struct py_frame shortf = *f;
    struct code_info code = *f->code;
    const char *slash = strrchr(code.filename, '/');
    if (slash && slash[1])
        code.filename = slash + 1;
    shortf.code = &code;
    stack_frame_text(&shortf, buf, sz);
}

/* The innermost frame of the stack the thread was seen in most often in
 * the window, whatever its state. */
static void current_frame(const struct run_metrics *m, const struct thread_metrics *t, char *buf,
                          size_t sz)
{
    struct stack_counts all = {0};
    for (int k = 0; k < TS_COUNT; k++)
        for (uint32_t i = 0; i < t->stacks[k].n; i++)
            stack_counts_add(&all, t->stacks[k].ids[i], t->stacks[k].counts[i]);
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < all.n; i++)
        if (best == UINT32_MAX || all.counts[i] > all.counts[best])
            best = i;
    const struct stack_entry *e = best == UINT32_MAX ? NULL : stack_table_get(&m->stacks, all.ids[best]);
    if (!e)
        snprintf(buf, sz, "-");
    else if (!e->nframes)
        snprintf(buf, sz, "(no Python frames)");
    else
        format_frame_short(&e->frames[0], buf, sz);
    stack_counts_free(&all);
}

int top_view_update(struct top_view *v, const struct run_metrics *m)
{
    if (m->nthreads > v->caprows) {
        struct top_row *r = realloc(v->rows, m->nthreads * sizeof *r);
        if (!r)
            return -1;
        v->rows = r;
        v->caprows = m->nthreads;
    }
    v->valid = true;
    v->when = time(NULL);
    v->duration_s = m->duration_s;
    v->held_pct = m->held_pct;
    v->contended_pct = m->contended_pct;
    v->waiters_mean = m->waiters_mean;
    v->waiters_max = m->waiters_max;
    v->handoffs_per_s = m->handoffs_per_s;
    v->handoffs_unmeasured = m->handoffs_unmeasured;
    v->rate_hz = m->rate_hz;
    v->requested_rate_hz = m->requested_rate_hz;
    v->behind = m->behind;
    v->samples = m->samples_taken;
    v->missed = m->missed;
    v->loops = v->stalls = 0;
    v->stall_max_ms = 0;
    v->tasks = -1;
    v->timeouts_expired = 0;
    bool process_counted = false;
    v->nrows = 0;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        if (t->loop.seen && !t->exited) {
            v->loops++;
            v->stalls += t->loop.nstalls;
            if (t->loop.stall_max_ms > v->stall_max_ms)
                v->stall_max_ms = t->loop.stall_max_ms;
            const struct loop_tasks *lt = &t->loop.tasks;
            /* (counted for the whole process before 3.14: once) */
            if (lt->seen && (lt->per_thread || !process_counted)) {
                v->tasks = (v->tasks < 0 ? 0 : v->tasks) + lt->last;
                process_counted |= !lt->per_thread;
            }
            v->timeouts_expired += t->loop.timers.timeouts_expired;
        }
        if (!t->samples)
            continue; /* exited before this window, or not sampled yet */
        struct top_row *r = &v->rows[v->nrows++];
        r->tid = t->tid;
        snprintf(r->name, sizeof r->name, "%s", t->display);
        r->exited = t->exited;
        memcpy(r->pct, t->pct, sizeof r->pct);
        r->cpu_valid = t->cpu_valid && t->t_last > t->t_first;
        r->cpu_pct = t->cpu_pct;
        current_frame(m, t, r->frame, sizeof r->frame);
        snprintf(r->python_name, sizeof r->python_name, "%s", t->python_name);
        r->gil_wait_ms = t->wait_ms;
        report_blame_line(r->behind, sizeof r->behind, m, t);
    }
    top_view_sort(v, v->sort);
    return 0;
}

static enum top_sort g_sort;

static int cmp_desc(double x, double y)
{
    return (x < y) - (x > y);
}

static int by_key(const void *a, const void *b)
{
    const struct top_row *x = a, *y = b;
    int c = 0;
    switch (g_sort) {
    case TOP_SORT_GIL_WAIT: c = cmp_desc(x->pct[TS_GIL_WAIT], y->pct[TS_GIL_WAIT]); break;
    case TOP_SORT_HELD: c = cmp_desc(x->pct[TS_GIL_HELD], y->pct[TS_GIL_HELD]); break;
    case TOP_SORT_CPU:
        c = cmp_desc(x->cpu_valid ? x->cpu_pct : -1, y->cpu_valid ? y->cpu_pct : -1);
        break;
    case TOP_SORT_LOCK: c = cmp_desc(x->pct[TS_LOCK_WAIT], y->pct[TS_LOCK_WAIT]); break;
    case TOP_SORT_NAME: c = strcmp(x->name, y->name); break;
    case TOP_SORT_TID:
    case TOP_SORT_COUNT: break;
    }
    return c ? c : (x->tid > y->tid) - (x->tid < y->tid);
}

void top_view_sort(struct top_view *v, enum top_sort sort)
{
    v->sort = sort;
    g_sort = sort;
    qsort(v->rows, v->nrows, sizeof *v->rows, by_key);
}

int top_view_header(const struct top_view *v, char (*lines)[TOP_LINE], int max)
{
    int n = 0;
    if (n < max)
        snprintf(lines[n++], TOP_LINE, "gilprobe top - PID %d, Python %s - %s", v->pid,
                 v->version, v->cmdline);
    if (!v->valid) {
        if (n < max)
            snprintf(lines[n++], TOP_LINE, "sampling the first %.3g s interval...", v->interval_s);
        return n;
    }
    char handoffs[32] = "not measured";
    if (!v->handoffs_unmeasured)
        snprintf(handoffs, sizeof handoffs, "%.1f/s", v->handoffs_per_s);
    if (n < max)
        snprintf(lines[n++], TOP_LINE,
                 "GIL held %5.1f%%  contended %5.1f%%  waiters mean %.2f max %u  "
                 "hand-offs %s",
                 v->held_pct, v->contended_pct, v->waiters_mean, v->waiters_max, handoffs);
    if (n < max) {
        char loops[160] = "";
        if (v->loops && v->stalls)
            snprintf(loops, sizeof loops, "  loop stalls %u (max %.0f ms) in %u event loop%s",
                     v->stalls, v->stall_max_ms, v->loops, v->loops == 1 ? "" : "s");
        else if (v->loops)
            snprintf(loops, sizeof loops, "  loop stalls 0 in %u event loop%s", v->loops,
                     v->loops == 1 ? "" : "s");
        size_t used = strlen(loops);
        if (v->loops && v->tasks >= 0)
            snprintf(loops + used, sizeof loops - used, ", %" PRId64 " task%s", v->tasks,
                     v->tasks == 1 ? "" : "s");
        used = strlen(loops);
        if (v->timeouts_expired)
            snprintf(loops + used, sizeof loops - used, ", %" PRIu64 " timeout%s expired late",
                     v->timeouts_expired, v->timeouts_expired == 1 ? "" : "s");
        char behind[64] = "";
        if (v->behind)
            snprintf(behind, sizeof behind, " (behind: %" PRIu64 " missed)", v->missed);
        snprintf(lines[n++], TOP_LINE,
                 "interval %.2f s  sampler %.0f Hz of %.0f Hz (%" PRIu64 " samples)%s%s",
                 v->duration_s, v->rate_hz, v->requested_rate_hz, v->samples, behind, loops);
    }
    return n;
}

void top_view_columns(char *buf, size_t sz)
{
    snprintf(buf, sz, "%-8s %-24s %6s %6s %6s %6s %6s %6s %6s %6s  %s", "TID", "NAME", "HELD%",
             "GILW%", "LOCK%", "IDLE%", "IO%", "SLEEP%", "NOGIL%", "CPU%", "CURRENT FRAME");
}

void top_view_row(const struct top_row *r, char *buf, size_t sz)
{
    char cpu[16] = "-";
    if (r->cpu_valid)
        snprintf(cpu, sizeof cpu, "%.1f", r->cpu_pct);
    snprintf(buf, sz, "%-8d %-24.24s %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6s  %s%s", r->tid,
             r->name, r->pct[TS_GIL_HELD], r->pct[TS_GIL_WAIT], r->pct[TS_LOCK_WAIT],
             r->pct[TS_IDLE_WAIT], r->pct[TS_IO_WAIT], r->pct[TS_SLEEP], r->pct[TS_NOGIL_RUNNING], cpu, r->frame,
             r->exited ? " (exited)" : "");
}

void top_view_select(struct top_view *v, const char *tid_or_name)
{
    char *end;
    long tid = strtol(tid_or_name, &end, 10);
    if (*tid_or_name && !*end && tid > 0) {
        v->selected = (pid_t)tid;
        return;
    }
    snprintf(v->select_name, sizeof v->select_name, "%s", tid_or_name);
}

int top_view_selected(const struct top_view *v)
{
    for (uint32_t i = 0; i < v->nrows; i++) {
        const struct top_row *r = &v->rows[i];
        if ((v->selected && r->tid == v->selected) ||
            (!v->selected && v->select_name[0] && strcmp(r->python_name, v->select_name) == 0))
            return (int)i;
    }
    return v->nrows ? 0 : -1;
}

void top_view_select_move(struct top_view *v, int delta)
{
    int i = top_view_selected(v);
    if (i < 0)
        return;
    i += delta;
    if (i < 0)
        i = 0;
    if (i >= (int)v->nrows)
        i = (int)v->nrows - 1;
    v->selected = v->rows[i].tid;
}

void top_view_behind(const struct top_view *v, char *buf, size_t sz)
{
    int i = top_view_selected(v);
    if (i < 0) {
        snprintf(buf, sz, "no thread");
        return;
    }
    const struct top_row *r = &v->rows[i];
    if (r->gil_wait_ms <= 0 || !r->behind[0])
        snprintf(buf, sz, "%d %s: no GIL wait this interval", r->tid, r->name);
    else
        snprintf(buf, sz, "%d %s waited %.0f ms for the GIL, behind: %s", r->tid, r->name,
                 r->gil_wait_ms, r->behind);
}
