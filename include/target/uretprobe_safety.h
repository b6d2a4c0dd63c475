/* Whether a return probe (uretprobe) can kill the target. From 6.11 the
 * kernel returns from a uretprobe through a new `uretprobe` system call;
 * until 6.14 seccomp did not let it through, so a process under a seccomp
 * filter (systemd SystemCallFilter=, container runtimes' default profiles)
 * that does not allow that call is killed the first time a probed
 * function returns. gilprobe does not put return probes there. */
#ifndef GILPROBE_URETPROBE_SAFETY_H
#define GILPROBE_URETPROBE_SAFETY_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Tests pretend another kernel with this variable (a release string). */
#define KERNEL_RELEASE_ENV "GILPROBE_TEST_KERNEL_RELEASE"

/* True for a kernel release (uname -r) from 6.11 up to, not including, 6.14. */
bool kernel_uretprobe_kills_seccomp(const char *release);
/* True when the process runs under a seccomp filter (Seccomp: 2). */
bool proc_seccomp_filtered(pid_t pid);
/* True, with why filled (one clause), when return probes in pid would
 * kill it on this kernel. */
bool uretprobes_unsafe(pid_t pid, char *why, size_t whysz);

#endif
