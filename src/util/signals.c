#include "util/signals.h"

#include <string.h>

volatile sig_atomic_t signals_stop_requested;

static void (*g_undo[SIGNALS_MAX_UNDO])(void);
static volatile sig_atomic_t g_nundo;

static void on_stop_signal(int sig)
{
    (void)sig;
    signals_stop_requested = 1;
}

void signals_set(const int *sigs, size_t n, void (*handler)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = flags;
    for (size_t i = 0; i < n; i++)
        sigaction(sigs[i], &sa, NULL);
}

void signals_catch_stop(bool hangup)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    signals_set(sigs, hangup ? 3 : 2, on_stop_signal, 0);
}

static void on_fatal_signal(int sig)
{
    for (sig_atomic_t i = 0; i < g_nundo; i++)
        g_undo[i]();
    signal(sig, SIG_DFL);
    raise(sig);
}

bool signals_undo_on_fatal(void (*undo)(void), const int *extra, size_t nextra)
{
    if (g_nundo == SIGNALS_MAX_UNDO)
        return false;
    g_undo[g_nundo] = undo;
    g_nundo = g_nundo + 1; /* after the slot is written: a handler may run now */
    static const int fatal[] = {SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigfillset(&sa.sa_mask); /* no other handler runs in the middle of the undo */
    sa.sa_flags = SA_RESETHAND;
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        sigaction(fatal[i], &sa, NULL);
    for (size_t i = 0; i < nextra; i++)
        sigaction(extra[i], &sa, NULL);
    return true;
}

static void on_alarm(int sig)
{
    (void)sig; /* only there to interrupt the blocking call */
}

void signals_interrupt_on_alarm(void)
{
    static bool installed;
    if (installed)
        return;
    int sig = SIGALRM;
    signals_set(&sig, 1, on_alarm, 0);
    installed = true;
}
