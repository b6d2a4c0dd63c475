/* `gilprobe top -p PID`: a live view of the GIL and every thread, one
 * interval at a time. The view model (top_view_*) is built from a window's
 * metrics and formatted into lines shared by the ncurses screen and the
 * plain-text output used when standard output is not a terminal. */
#ifndef GILPROBE_TOP_H
#define GILPROBE_TOP_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "python/pyrt.h"
#include "record/metrics.h"
#include "util/errors.h"

#define TOP_LINE 512

enum top_sort { TOP_SORT_GIL_WAIT, TOP_SORT_HELD, TOP_SORT_CPU, TOP_SORT_LOCK, TOP_SORT_TID,
                TOP_SORT_NAME, TOP_SORT_COUNT };

/* "gil-wait" ... ; 0, or -1 for an unknown key. */
int top_sort_parse(const char *s, enum top_sort *out);
const char *top_sort_name(enum top_sort s);
/* "gil-wait, held, cpu, lock, tid, name" */
const char *top_sort_keys(void);

struct top_row {
    pid_t tid;
    char name[THREAD_NAME_MAX + 40]; /* as thread_display_name shows it */
    bool exited;
    bool cpu_valid;
    double pct[TS_COUNT];
    double cpu_pct;
    char frame[400]; /* innermost frame of its most frequent stack */
    char python_name[THREAD_NAME_MAX];
    double gil_wait_ms;
    char behind[400]; /* whom its GIL wait was spent behind (report_blame_line) */
};

struct top_view {
    bool valid; /* an interval has been measured */
    pid_t pid;
    char cmdline[200];
    char version[64]; /* "3.12.1", with " (untested version)" when read through its _Py_DebugOffsets */
    time_t when;
    double interval_s, duration_s;
    double held_pct, contended_pct, waiters_mean, handoffs_per_s;
    bool handoffs_unmeasured; /* a version read through its _Py_DebugOffsets */
    uint32_t waiters_max;
    double rate_hz, requested_rate_hz;
    bool behind;
    uint64_t samples, missed;
    uint32_t loops, stalls;
    double stall_max_ms;
    int64_t tasks;             /* asyncio tasks alive (-1: not counted) */
    uint64_t timeouts_expired; /* by a late loop, this interval */
    enum top_sort sort;
    /* The thread whose GIL waits are explained under the table: chosen by
     * TID, or by name until a thread of that name is seen; 0 and "": the
     * first row. */
    pid_t selected;
    char select_name[THREAD_NAME_MAX];
    struct top_row *rows;
    uint32_t nrows, caprows;
};

void top_view_init(struct top_view *v, pid_t pid, const struct pyrt *rt, double interval_s,
                   enum top_sort sort);
void top_view_free(struct top_view *v);
/* Takes a window's figures (after metrics_window_finish); -1 on OOM. */
int top_view_update(struct top_view *v, const struct run_metrics *m);
void top_view_sort(struct top_view *v, enum top_sort sort);
/* Header lines (at most max; TOP_LINE chars each); returns how many. */
int top_view_header(const struct top_view *v, char (*lines)[TOP_LINE], int max);
void top_view_columns(char *buf, size_t sz);
void top_view_row(const struct top_row *r, char *buf, size_t sz);
/* "--thread" as given: a TID (all digits) or a thread name. */
void top_view_select(struct top_view *v, const char *tid_or_name);
/* Index of the selected row (0 when there are rows; -1 when none). */
int top_view_selected(const struct top_view *v);
/* Moves the selection by delta rows (the arrow keys). */
void top_view_select_move(struct top_view *v, int delta);
/* The line under the table: whom the selected thread waits behind. */
void top_view_behind(const struct top_view *v, char *buf, size_t sz);

#endif
