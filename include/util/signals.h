/* Every signal handler gilprobe installs, in one place: the stop request
 * the sampling commands poll, and the undo that fatal signals run before
 * gilprobe dies (resume a stopped target, give the terminal back). */
#ifndef GILPROBE_SIGNALS_H
#define GILPROBE_SIGNALS_H
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* Set by the stop signals: a run ends early and still reports. Process-wide
 * by nature (a signal handler can reach nothing else). */
extern volatile sig_atomic_t signals_stop_requested;

/* SIGINT and SIGTERM (and SIGHUP with `hangup`) set signals_stop_requested. */
void signals_catch_stop(bool hangup);
/* `handler` for each of sigs[0..n), with an empty mask and these flags. */
void signals_set(const int *sigs, size_t n, void (*handler)(int), int flags);
/* SIGALRM only interrupts a blocking call (EINTR, no SA_RESTART): a timer
 * bounds a wait that nothing else would. Idempotent. */
void signals_interrupt_on_alarm(void);
/* On SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL and the `extra`
 * signals: every undo registered so far runs (async-signal-safe calls
 * only), then the signal kills gilprobe as it would have. At most
 * SIGNALS_MAX_UNDO undos; returns false when full. */
#define SIGNALS_MAX_UNDO 4
bool signals_undo_on_fatal(void (*undo)(void), const int *extra, size_t nextra);

#endif
