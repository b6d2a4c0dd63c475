/* `gilprobe run -- COMMAND`: starts the command, samples it from its
 * first Python instruction to its exit, and exits with its exit code
 * (or GP_CHECKS_FAILED when a --fail-on check failed). */
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "report/sample.h"
#include "util/signals.h"

static volatile sig_atomic_t g_child_exited;
static volatile sig_atomic_t g_stop;
static volatile pid_t g_child;
static volatile sig_atomic_t g_child_held; /* stopped by us while attaching */

/* Only its exit counts (not its stops), and it is not reaped here: its
 * exit status is collected once the report is out. */
static int child_has_exited(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)g_child, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid;
}

static void on_child(int sig)
{
    (void)sig;
    int saved = errno;
    if (child_has_exited()) {
        g_child_exited = 1;
        g_stop = 1;
    }
    errno = saved;
}

/* A termination request for gilprobe is passed on to the program: the run
 * ends when it exits, and the report covers all of it. */
static void on_terminate(int sig)
{
    if (g_child_held)
        kill(g_child, SIGCONT);
    if (g_child > 0)
        kill(g_child, sig);
}

static void install_handlers(void)
{
    static const int child[] = {SIGCHLD}, terminate[] = {SIGTERM, SIGHUP},
                     keyboard[] = {SIGINT, SIGQUIT};
    signals_set(child, 1, on_child, SA_RESTART | SA_NOCLDSTOP);
    signals_set(terminate, 2, on_terminate, SA_RESTART);
    /* Ctrl-C reaches the program directly (same process group): gilprobe
     * keeps sampling until the program is gone. */
    signals_set(keyboard, 2, SIG_IGN, 0);
}

static void resume_child(void *arg)
{
    (void)arg;
    if (g_child_held) {
        kill(g_child, SIGCONT);
        g_child_held = 0;
    }
}

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

/* Starts argv with a pipe that tells whether exec worked, and with the
 * signal mask gilprobe was started with (`mask`: its SIGCHLD is blocked
 * here only while the parent learns the child's PID). */
static pid_t spawn(char **argv, const sigset_t *mask, int *exec_errno)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        *exec_errno = errno;
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        *exec_errno = errno;
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        static const int ours[] = {SIGINT, SIGQUIT}; /* gilprobe's handling, not the program's */
        signals_set(ours, 2, SIG_DFL, 0);
        /* A blocked SIGCHLD survives exec: a program that waits for it
         * (multiprocessing's forkserver, asyncio's child watchers) hung. */
        sigprocmask(SIG_SETMASK, mask, NULL);
        execvp(argv[0], argv);
        int e = errno;
        if (write(fds[1], &e, sizeof e) < 0)
            _exit(GP_EXEC_FAILED);
        _exit(GP_EXEC_FAILED);
    }
    close(fds[1]);
    int e = 0;
    ssize_t n;
    while ((n = read(fds[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(fds[0]);
    *exec_errno = n == (ssize_t)sizeof e ? e : 0;
    return pid;
}

/* Attaches as soon as the program's Python runtime is there: first every
 * millisecond, backing off to 50 ms for programs that take long to start
 * Python (or never do). The program is then held (SIGSTOP) while the
 * eBPF programs load, so that sampling starts before its first Python
 * instruction runs; it is resumed on every path. */
static int wait_for_python(pid_t pid, struct pyrt *rt, struct gp_error *err)
{
    double delay = 1;
    for (;;) {
        /* Asked of the kernel, not of the SIGCHLD flag: the program can
         * be a zombie (and look gone to the attach) before the handler ran. */
        if (child_has_exited()) {
            gp_error_set(err, GP_ERR_NOT_PYTHON, "the command exited before it ran Python; "
                         "give run a Python program (use exec in wrapper scripts)");
            return err->code;
        }
        struct gp_error local = {0};
        if (cli_attach(pid, rt, &local) == GP_OK) {
            g_child_held = kill(pid, SIGSTOP) == 0;
            return GP_OK;
        }
        if (local.code != GP_ERR_NOT_PYTHON && local.code != GP_ERR_EXITED &&
            local.code != GP_ERR_NO_PROCESS && local.code != GP_ERR_UNSUPPORTED) {
            *err = local;
            return err->code;
        }
        if (local.code == GP_ERR_UNSUPPORTED && delay >= 50) {
            *err = local; /* a settled runtime of an unknown version */
            return err->code;
        }
        sleep_ms(delay);
        delay = delay * 1.5 > 50 ? 50 : delay * 1.5;
    }
}

static int exit_status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return GP_ERR_INTERNAL;
}

int cmd_run(struct sample_options *opt, char **argv, struct gp_error *err)
{
    install_handlers();
    int exec_errno = 0;
    /* SIGCHLD is held until g_child is known, so the handler sees it. */
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    pid_t pid = spawn(argv, &old, &exec_errno);
    g_child = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0 || exec_errno) {
        if (pid > 0)
            waitpid(pid, NULL, 0);
        gp_error_set(err, GP_EXEC_FAILED, "cannot run '%s': %s; check the command and PATH",
                     argv[0], strerror(exec_errno ? exec_errno : errno));
        fprintf(stderr, "gilprobe: %s\n", err->msg);
        return err->code;
    }
    opt->pid = pid;
    struct pyrt rt;
    int r = wait_for_python(pid, &rt, err);
    if (r == GP_OK) {
        struct sample_driver d = {.command = "run",
                                  .report_out = stderr,
                                  .stop = &g_stop,
                                  .target_exited = &g_child_exited,
                                  .before_sampling = resume_child};
        r = sample_attached(opt, &rt, &d, err);
    }
    resume_child(NULL);
    if (r != GP_OK && r != GP_CHECKS_FAILED && err->msg[0]) {
        fprintf(stderr, "gilprobe: %s\n", err->msg);
        err->msg[0] = '\0'; /* said once */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (r != GP_OK)
        return r; /* gilprobe's own failure or a failed check */
    return exit_status_code(status);
}
