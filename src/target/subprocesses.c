/* --subprocesses: every Python process below the target (there at the
 * start or appearing during the run) is sampled by its own gilprobe (this
 * executable, re-run), in parallel with the target's sampling; their JSON
 * reports join the target's. */
#include "target/subprocesses.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "target/system.h"

extern char **environ;

static bool probed(const struct child_probe *probes, int n, pid_t pid)
{
    for (int i = 0; i < n; i++)
        if (probes[i].target == pid)
            return true;
    return false;
}

int subprocesses_poll(pid_t pid, double seconds, double rate_hz, struct child_probe *probes, int n,
                      int max)
{
    pid_t kids[SUBPROCESSES_MAX];
    int nk = system_python_descendants(pid, kids, SUBPROCESSES_MAX);
    for (int i = 0; i < nk && n < max && n < SUBPROCESSES_MAX; i++) {
        if (probed(probes, n, kids[i]))
            continue;
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
            break;
        char p[16], d[32], r[32];
        snprintf(p, sizeof p, "%d", kids[i]);
        snprintf(d, sizeof d, "%.3f", seconds);
        snprintf(r, sizeof r, "%.0f", rate_hz);
        char *argv[] = {"gilprobe", "-p", p, "-d", d, "-r", r, "--json", "--no-bpf", NULL};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        pid_t child;
        int rc = posix_spawn(&child, "/proc/self/exe", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(fds[1]);
        if (rc != 0) {
            close(fds[0]);
            continue;
        }
        probes[n++] = (struct child_probe){kids[i], child, fds[0]};
    }
    return n;
}

/* Reads a child gilprobe's whole report (it writes once, at its end). */
static struct json_object *read_report(int fd)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                break;
            buf = nb;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    struct json_object *doc = NULL;
    if (buf) {
        buf[len] = '\0';
        doc = json_tokener_parse(buf);
    }
    free(buf);
    return doc;
}

void subprocesses_finish(struct child_probe *probes, int n, bool stop_early,
                         struct json_object **reports)
{
    for (int i = 0; i < n; i++)
        if (stop_early)
            kill(probes[i].probe, SIGINT); /* they report what they saw */
    for (int i = 0; i < n; i++) {
        reports[i] = read_report(probes[i].fd);
        close(probes[i].fd);
        waitpid(probes[i].probe, NULL, 0);
    }
}
