#include "target/uretprobe_safety.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "target/proc.h"

bool kernel_uretprobe_kills_seccomp(const char *release)
{
    int major, minor;
    if (!release || sscanf(release, "%d.%d", &major, &minor) != 2)
        return false;
    return major == 6 && minor >= 11 && minor < 14;
}

bool proc_seccomp_filtered(pid_t pid)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (proc_read_small_file(path, buf, sizeof buf) < 0)
        return false;
    const char *s = strstr(buf, "\nSeccomp:");
    return s && atoi(s + 9) == 2;
}

bool uretprobes_unsafe(pid_t pid, char *why, size_t whysz)
{
    struct utsname u;
    const char *release = getenv(KERNEL_RELEASE_ENV);
    if (!release)
        release = uname(&u) == 0 ? u.release : NULL;
    if (!kernel_uretprobe_kills_seccomp(release) || !proc_seccomp_filtered(pid))
        return false;
    snprintf(why, whysz, "the process runs under a seccomp filter and on kernel %s (6.11 to 6.13) "
             "a return probe would kill it (the uretprobe system call is not let through "
             "before 6.14): no exact timing, sampled figures only", release);
    return true;
}
