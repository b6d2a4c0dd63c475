/* --blocking: stop every thread of the target with ptrace for a consistent
 * read, and always let them go again (normal exit, errors and signals). */
#ifndef GILPROBE_STOPPER_H
#define GILPROBE_STOPPER_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/errors.h"

#define STOPPER_DEFAULT_TIMEOUT_MS 1000

/* Stops all threads; on failure every thread stopped so far is resumed.
 * GP_OK or an exit code with err filled. */
int stopper_stop_all(pid_t pid, int timeout_ms, struct gp_error *err);
/* Resumes (detaches) everything stopped; safe to call more than once.
 * Returns how long the target was stopped, in microseconds. */
uint64_t stopper_resume_all(void);
/* --native: one thread at a time, for its own unwind. It is seized and
 * interrupted (its siblings run on), kept in the table the signal handlers
 * detach, and must be given back with stopper_resume_thread. GP_OK, or an
 * exit code (err filled) when it could not be stopped within timeout_ms
 * (it is then already detached); *gone when it exited meanwhile. */
int stopper_stop_thread(pid_t tid, int timeout_ms, bool *gone, struct gp_error *err);
/* Detaches tid; returns the nanoseconds from the stop request to the
 * detach: the most it can have stood still (it may have reached the stop
 * later, e.g. waiting for a CPU). */
uint64_t stopper_resume_thread(pid_t tid);
/* Of the last thread resumed: from the moment gilprobe saw it stopped to
 * its detach (the least it stood still). */
uint64_t stopper_thread_stopped_ns(void);
/* Installed once by main: fatal signals resume the target before dying. */
void stopper_install_signal_handlers(void);

#endif
