/* --subprocesses: sampling the target's Python child processes too. */
#ifndef GILPROBE_SUBPROCESSES_H
#define GILPROBE_SUBPROCESSES_H
#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#define SUBPROCESSES_MAX 16

struct child_probe {
    pid_t target; /* the Python child */
    pid_t probe;  /* the gilprobe sampling it */
    int fd;       /* its report */
};

/* Starts one gilprobe (for at most `seconds`) per Python descendant not yet
 * among probes[0..n); returns the new count (at most max). */
int subprocesses_poll(pid_t pid, double seconds, double rate_hz, struct child_probe *probes, int n,
                      int max);
/* Collects their reports (NULL where one failed); stop_early ends them now. */
void subprocesses_finish(struct child_probe *probes, int n, bool stop_early,
                         struct json_object **reports);

#endif
