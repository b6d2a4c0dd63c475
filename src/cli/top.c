/* `gilprobe top -p PID`: the sampler runs continuously (attached once) and
 * every interval its window of metrics becomes one screen (ncurses on a
 * terminal, a plain-text block otherwise). The terminal is given back on
 * every way out: quit, the target's exit, signals, errors, crashes. */
#include <errno.h>
#include <ncurses.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "analysis/figures.h"
#include "commands.h"
#include "report/top_view.h"
#include "sample/sampler.h"
#include "util/signals.h"

/* Long enough to be "until stopped". */
#define TOP_RUN_S (100.0 * 365 * 86400)

/* Terminal state for the signal-safe restore: what it was before ncurses,
 * and the sequence that leaves the alternate screen. */
static volatile sig_atomic_t g_curses;
static struct termios g_saved_tty;
static bool g_saved_tty_ok;
static char g_rmcup[64];
static size_t g_rmcup_len;
static SCREEN *g_screen;

struct top_state {
    const struct top_options *opt;
    struct top_view view;
    bool curses;
    long shown;
    bool done;  /* -n intervals shown */
    bool oom;
    int write_errno; /* plain output failed */
};

/* Only async-signal-safe calls: used by the fatal-signal handler. */
static void restore_tty_raw(void)
{
    if (!g_curses)
        return;
    if (g_rmcup_len && write(STDOUT_FILENO, g_rmcup, g_rmcup_len) < 0) {
        /* nothing more can be done */
    }
    static const char show_cursor[] = "\033[?25h\r\n";
    if (write(STDOUT_FILENO, show_cursor, sizeof show_cursor - 1) < 0) {
        /* idem */
    }
    if (g_saved_tty_ok)
        tcsetattr(STDOUT_FILENO, TCSAFLUSH, &g_saved_tty);
    g_curses = 0;
}

static void install_signal_handlers(void)
{
    signals_catch_stop(true);
    signals_undo_on_fatal(restore_tty_raw, NULL, 0);
}

static void end_curses(void)
{
    if (!g_curses)
        return;
    endwin();
    fflush(stdout);
    g_curses = 0;
    if (g_screen)
        delscreen(g_screen);
    g_screen = NULL;
}

static bool start_curses(void)
{
    static bool atexit_done;
    g_saved_tty_ok = tcgetattr(STDOUT_FILENO, &g_saved_tty) == 0;
    g_screen = newterm(NULL, stdout, stdin);
    if (!g_screen)
        return false;
    if (!atexit_done)
        atexit(end_curses);
    atexit_done = true;
    const char *rmcup = tigetstr("rmcup");
    if (rmcup && rmcup != (const char *)-1 && strlen(rmcup) < sizeof g_rmcup) {
        g_rmcup_len = strlen(rmcup);
        memcpy(g_rmcup, rmcup, g_rmcup_len);
    }
    g_curses = 1;
    cbreak();
    noecho();
    nodelay(stdscr, TRUE);
    keypad(stdscr, TRUE);
    curs_set(0);
    return true;
}

static const char FOOTER_KEYS[] =
    "q quit  sort: w gil-wait  h held  c cpu  l lock  t tid  n name  up/down: thread";

static void draw(struct top_state *st)
{
    const struct top_view *v = &st->view;
    char lines[4][TOP_LINE], buf[TOP_LINE + 400];
    erase();
    int y = 0;
    int n = top_view_header(v, lines, 4);
    char when[16] = "";
    struct tm tm;
    if (v->valid && localtime_r(&v->when, &tm))
        strftime(when, sizeof when, "%H:%M:%S", &tm);
    int wlen = when[0] && COLS > 40 ? (int)strlen(when) : 0;
    for (int i = 0; i < n && y < LINES; i++, y++)
        mvaddnstr(y, 0, lines[i], i == 0 && wlen ? COLS - wlen - 2 : COLS);
    if (wlen)
        mvaddstr(0, COLS - wlen, when);
    y++;
    if (y < LINES - 1) {
        top_view_columns(buf, sizeof buf);
        attron(A_REVERSE);
        mvprintw(y++, 0, "%-*.*s", COLS, COLS, buf);
        attroff(A_REVERSE);
    }
    uint32_t shown = 0;
    int selected = top_view_selected(v);
    for (; shown < v->nrows && y < LINES - 2; shown++) {
        top_view_row(&v->rows[shown], buf, sizeof buf);
        if ((int)shown == selected)
            attron(A_BOLD);
        mvaddnstr(y++, 0, buf, COLS);
        if ((int)shown == selected)
            attroff(A_BOLD);
    }
    if (v->valid && y < LINES - 1) {
        top_view_behind(v, buf, sizeof buf);
        mvaddnstr(LINES - 2, 0, buf, COLS);
    }
    char footer[256];
    int len = snprintf(footer, sizeof footer, "%s   sorted by %s", FOOTER_KEYS,
                       top_sort_name(v->sort));
    if (shown < v->nrows && len > 0 && (size_t)len < sizeof footer)
        snprintf(footer + len, sizeof footer - (size_t)len, "   (%u more threads)",
                 v->nrows - shown);
    attron(A_REVERSE);
    mvprintw(LINES - 1, 0, "%-*.*s", COLS - 1, COLS - 1, footer);
    attroff(A_REVERSE);
    refresh();
}

/* One interval as plain text: a timestamp line, the header, the rows. */
static int print_block(FILE *out, const struct top_view *v)
{
    char lines[4][TOP_LINE], buf[TOP_LINE + 400], when[32] = "";
    struct tm tm;
    if (localtime_r(&v->when, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(out, "=== %s ===\n", when);
    int n = top_view_header(v, lines, 4);
    for (int i = 0; i < n; i++)
        fprintf(out, "%s\n", lines[i]);
    top_view_columns(buf, sizeof buf);
    fprintf(out, "%s\n", buf);
    for (uint32_t i = 0; i < v->nrows; i++) {
        top_view_row(&v->rows[i], buf, sizeof buf);
        fprintf(out, "%s\n", buf);
    }
    top_view_behind(v, buf, sizeof buf);
    fprintf(out, "waits behind: %s\n\n", buf);
    return fflush(out) != 0 || ferror(out) ? -1 : 0;
}

static void on_window(struct run_metrics *m, void *arg)
{
    struct top_state *st = arg;
    metrics_window_finish(m);
    if (top_view_update(&st->view, m) != 0) {
        st->oom = true;
        signals_stop_requested = 1;
    }
    metrics_window_reset(m);
    if (st->oom)
        return;
    st->shown++;
    if (st->curses) {
        draw(st);
    } else if (print_block(stdout, &st->view) != 0) {
        st->write_errno = errno ? errno : EIO;
        signals_stop_requested = 1;
    }
    if (st->opt->iterations && st->shown >= st->opt->iterations) {
        st->done = true;
        signals_stop_requested = 1;
    }
}

static enum top_sort sort_for_key(int ch, enum top_sort cur)
{
    switch (ch) {
    case 'w': return TOP_SORT_GIL_WAIT;
    case 'h': return TOP_SORT_HELD;
    case 'c': return TOP_SORT_CPU;
    case 'l': return TOP_SORT_LOCK;
    case 't': return TOP_SORT_TID;
    case 'n': return TOP_SORT_NAME;
    default: return cur;
    }
}

/* Every 0.1 s from the sampler: keys. */
static void on_progress(double elapsed, double duration, uint64_t samples, void *arg)
{
    (void)elapsed;
    (void)duration;
    (void)samples;
    struct top_state *st = arg;
    if (!st->curses)
        return;
    bool redraw = false;
    int ch;
    while ((ch = getch()) != ERR) {
        if (ch == 'q' || ch == 'Q') {
            signals_stop_requested = 1;
            return;
        }
        enum top_sort s = sort_for_key(ch, st->view.sort);
        if (s != st->view.sort) {
            top_view_sort(&st->view, s);
            redraw = true;
        }
        if (ch == KEY_UP || ch == 'k' || ch == KEY_DOWN || ch == 'j') {
            top_view_select_move(&st->view, ch == KEY_UP || ch == 'k' ? -1 : 1);
            redraw = true;
        }
        redraw |= ch == KEY_RESIZE || ch == 12; /* Ctrl-L */
    }
    if (redraw)
        draw(st);
}

int cmd_top(const struct top_options *opt, struct gp_error *err)
{
    struct pyrt rt;
    int r = cli_attach(opt->pid, &rt, err);
    if (r != GP_OK)
        return r;
    signals_stop_requested = 0;
    install_signal_handlers();
    struct top_state st = {.opt = opt};
    top_view_init(&st.view, opt->pid, &rt, opt->interval_s, opt->sort);
    if (opt->thread)
        top_view_select(&st.view, opt->thread);
    struct run_metrics m;
    struct sampler_cost cost = {0};
    struct pyobj_cache cache;
    metrics_init(&m);
    pyobj_cache_init(&cache);
    st.curses = isatty(STDOUT_FILENO) && start_curses();
    struct sampler_options so = {.duration_s = TOP_RUN_S,
                                 .rate_hz = opt->rate_hz,
                                 .stop = &signals_stop_requested,
                                 .no_bpf = opt->no_bpf,
                                 .progress = st.curses ? on_progress : NULL,
                                 .progress_arg = &st,
                                 .window_s = opt->interval_s,
                                 .on_window = on_window,
                                 .window_arg = &st};
    if (st.curses)
        draw(&st);
    r = sampler_run(&rt, &cache, &so, &m, &cost, err);
    bool was_curses = st.curses;
    end_curses();
    if (r == GP_OK && st.oom) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory");
        r = err->code;
    } else if (r == GP_OK && st.write_errno) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write to standard output: %s",
                     strerror(st.write_errno));
        r = err->code;
    } else if (r == GP_OK && st.done && was_curses && st.view.valid) {
        /* -n on a terminal: the last interval stays on screen. */
        print_block(stdout, &st.view);
    }
    if (r == GP_OK && m.process_exited)
        fprintf(stderr, "gilprobe: process %d exited\n", opt->pid);
    top_view_free(&st.view);
    metrics_free(&m);
    pyobj_cache_free(&cache);
    return r;
}
