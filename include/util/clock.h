/* The monotonic clock, in the two units gilprobe counts in: seconds (as a
 * double) for deadlines and rates, nanoseconds for what eBPF records. */
#ifndef GILPROBE_CLOCK_H
#define GILPROBE_CLOCK_H
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC now, in seconds. */
double clock_mono_s(void);
/* CLOCK_MONOTONIC now, in nanoseconds (the clock bpf_ktime_get_ns reads). */
uint64_t clock_mono_ns(void);
/* The calling thread's CPU time, in seconds: what a piece of work cost,
 * however long the thread waited for a CPU meanwhile. */
double clock_thread_cpu_s(void);
/* A time in seconds as a timespec, for absolute sleeps and timed waits. */
struct timespec clock_timespec(double t);

#endif
