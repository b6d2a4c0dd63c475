#include "target/stopper.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "target/proc.h"
#include "util/signals.h"
#include "util/clock.h"

#define MAX_STOPPED 65536
#define SEIZE_ROUNDS 5
#define FAST_POLLS 200

/* Read by the signal handler: plain arrays, written before the count. */
static pid_t g_stopped[MAX_STOPPED];
static volatile sig_atomic_t g_count;
static uint64_t g_stop_started_ns;

static void detach_all_raw(void)
{
    /* Only async-signal-safe calls here: it runs from signal handlers. */
    for (sig_atomic_t i = 0; i < g_count; i++)
        ptrace(PTRACE_DETACH, g_stopped[i], NULL, NULL);
    g_count = 0;
}

uint64_t stopper_resume_all(void)
{
    if (g_count == 0)
        return 0;
    detach_all_raw();
    return (clock_mono_ns() - g_stop_started_ns) / 1000;
}

void stopper_install_signal_handlers(void)
{
    /* Beyond the fatal ones: whatever ends gilprobe by default. */
    static const int ending[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    signals_undo_on_fatal(detach_all_raw, ending, sizeof ending / sizeof ending[0]);
}

static bool is_stopped(pid_t tid)
{
    for (sig_atomic_t i = 0; i < g_count; i++)
        if (g_stopped[i] == tid)
            return true;
    return false;
}

/* Waits until `tid` reports its ptrace stop; false on timeout. */
static bool wait_stopped(pid_t tid, uint64_t deadline_ns, bool *gone)
{
    *gone = false;
    unsigned polls = 0;
    for (;;) {
        int status;
        pid_t r = waitpid(tid, &status, __WALL | WNOHANG);
        if (r == tid) {
            if (WIFEXITED(status) || WIFSIGNALED(status)) {
                *gone = true;
                return true;
            }
            if (WIFSTOPPED(status)) {
                /* A real signal arrived first: deliver it on resume. */
                int sig = WSTOPSIG(status);
                if (sig != SIGTRAP && (status >> 16) == 0) {
                    ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig);
                    continue;
                }
                return true;
            }
        } else if (r < 0 && errno != EINTR) {
            *gone = errno == ECHILD;
            return *gone;
        }
        uint64_t now = clock_mono_ns();
        if (now > deadline_ns)
            return false;
        /* Most stops land within microseconds: poll eagerly first, since
         * every microsecond here is one the target stands still. */
        if (++polls < FAST_POLLS) {
            sched_yield();
            continue;
        }
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
}

static int seize_missing(pid_t pid, uint64_t deadline_ns, struct gp_error *err, bool *added)
{
    pid_t *tids;
    size_t n;
    *added = false;
    int r = proc_list_tasks(pid, &tids, &n);
    if (r < 0)
        return gp_error_from_errno(err, -r, pid, "the thread list");
    for (size_t i = 0; i < n; i++) {
        if (is_stopped(tids[i]))
            continue;
        if (g_count >= MAX_STOPPED) {
            free(tids);
            gp_error_set(err, GP_ERR_INTERNAL, "process %d has more than %d threads to stop", pid,
                         MAX_STOPPED);
            return err->code;
        }
        if (ptrace(PTRACE_SEIZE, tids[i], NULL, NULL) != 0) {
            int e = errno;
            if (e == ESRCH)
                continue; /* exited meanwhile */
            free(tids);
            if (e == EPERM)
                gp_error_set(err, GP_ERR_PERMISSION,
                             "cannot stop thread %d of process %d with ptrace: permission "
                             "denied; run as root or with CAP_SYS_PTRACE (and check "
                             "/proc/sys/kernel/yama/ptrace_scope), or drop --blocking",
                             tids[i], pid);
            else
                gp_error_set(err, GP_ERR_INTERNAL, "cannot stop thread %d of process %d: %s",
                             tids[i], pid, strerror(e));
            return err->code;
        }
        g_stopped[g_count] = tids[i];
        g_count = g_count + 1;
        ptrace(PTRACE_INTERRUPT, tids[i], NULL, NULL);
        bool gone;
        if (!wait_stopped(tids[i], deadline_ns, &gone)) {
            free(tids);
            gp_error_set(err, GP_ERR_INTERNAL,
                         "thread %d of process %d did not stop in time; the target was resumed; "
                         "retry, or drop --blocking",
                         tids[i], pid);
            return err->code;
        }
        *added = true;
    }
    free(tids);
    return GP_OK;
}

int stopper_stop_all(pid_t pid, int timeout_ms, struct gp_error *err)
{
    g_stop_started_ns = clock_mono_ns();
    uint64_t deadline = g_stop_started_ns + (uint64_t)timeout_ms * 1000000u;
    /* Threads may start while we stop the others: list again until no new
     * thread shows up. */
    for (int round = 0; round < SEIZE_ROUNDS; round++) {
        bool added;
        int r = seize_missing(pid, deadline, err, &added);
        if (r != GP_OK) {
            stopper_resume_all();
            return r;
        }
        if (!added)
            return GP_OK;
    }
    return GP_OK;
}

static uint64_t g_thread_stop_ns, g_thread_stopped_ns, g_thread_detached_ns;

/* Blocks in waitpid until tid stops: woken the moment it does, and no CPU
 * taken from the target meanwhile (polling would, on a busy machine). A
 * repeating timer bounds the wait; repeating, so that a tick landing just
 * before waitpid blocks cannot leave it blocked for good. */
static bool wait_stopped_blocking(pid_t tid, uint64_t deadline_ns, bool *gone)
{
    signals_interrupt_on_alarm();
    struct itimerval it = {{0, 2000}, {0, 2000}};
    setitimer(ITIMER_REAL, &it, NULL);
    bool stopped = false;
    *gone = false;
    for (;;) {
        int status;
        pid_t r = waitpid(tid, &status, __WALL);
        if (r == tid) {
            if (WIFEXITED(status) || WIFSIGNALED(status)) {
                *gone = stopped = true;
                break;
            }
            int sig = WSTOPSIG(status);
            if (WIFSTOPPED(status) && sig != SIGTRAP && (status >> 16) == 0) {
                ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig); /* its own signal */
                continue;
            }
            stopped = true;
            break;
        }
        if (r < 0 && errno != EINTR) {
            *gone = stopped = errno == ECHILD;
            break;
        }
        if (clock_mono_ns() > deadline_ns)
            break;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    return stopped;
}

int stopper_stop_thread(pid_t tid, int timeout_ms, bool *gone, struct gp_error *err)
{
    *gone = false;
    if (g_count >= MAX_STOPPED) {
        gp_error_set(err, GP_ERR_INTERNAL, "too many threads stopped at once");
        return err->code;
    }
    if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
        int e = errno;
        if (e == ESRCH) {
            *gone = true;
            gp_error_set(err, GP_ERR_EXITED, "thread %d exited", tid);
        } else if (e == EPERM) {
            gp_error_set(err, GP_ERR_PERMISSION,
                         "cannot stop thread %d with ptrace: permission denied; run as root or "
                         "with CAP_SYS_PTRACE (and check /proc/sys/kernel/yama/ptrace_scope), "
                         "or drop --native",
                         tid);
        } else {
            gp_error_set(err, GP_ERR_INTERNAL, "cannot stop thread %d: %s", tid, strerror(e));
        }
        return err->code;
    }
    /* In the table before it can stop: a signal from here on detaches it. */
    g_stopped[g_count] = tid;
    g_count = g_count + 1;
    g_thread_stop_ns = clock_mono_ns();
    ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
    if (!wait_stopped_blocking(tid, g_thread_stop_ns + (uint64_t)timeout_ms * 1000000u, gone) ||
        *gone) {
        stopper_resume_thread(tid);
        if (*gone)
            gp_error_set(err, GP_ERR_EXITED, "thread %d exited", tid);
        else
            gp_error_set(err, GP_ERR_INTERNAL, "thread %d did not stop within %d ms; resumed",
                         tid, timeout_ms);
        return err->code;
    }
    g_thread_stopped_ns = clock_mono_ns();
    return GP_OK;
}

uint64_t stopper_thread_stopped_ns(void)
{
    return g_thread_detached_ns - g_thread_stopped_ns;
}

uint64_t stopper_resume_thread(pid_t tid)
{
    /* Not in its stop yet (the wait for it timed out): the interrupt is
     * still pending, so it will stop, and must not stay stopped - wait for
     * that stop (bounded) and detach then. */
    if (ptrace(PTRACE_DETACH, tid, NULL, NULL) != 0 && errno == ESRCH) {
        bool gone;
        if (wait_stopped_blocking(tid, clock_mono_ns() + 1000000000ull, &gone) && !gone)
            ptrace(PTRACE_DETACH, tid, NULL, NULL);
    }
    g_thread_detached_ns = clock_mono_ns();
    uint64_t stopped = g_thread_detached_ns - g_thread_stop_ns;
    /* Detached first, forgotten after: a signal in between detaches it
     * twice, which is harmless (ESRCH). */
    for (sig_atomic_t i = 0; i < g_count; i++) {
        if (g_stopped[i] != tid)
            continue;
        g_stopped[i] = g_stopped[g_count - 1];
        g_count = g_count - 1;
        break;
    }
    return stopped;
}
