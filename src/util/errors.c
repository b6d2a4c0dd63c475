#include "util/errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void gp_error_set(struct gp_error *err, int code, const char *fmt, ...)
{
    if (!err || err->code != GP_OK)
        return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

int gp_error_from_errno(struct gp_error *err, int errnum, int pid, const char *what)
{
    switch (errnum) {
    case ESRCH:
    case ENOENT:
        gp_error_set(err, GP_ERR_EXITED,
                     "process %d exited while gilprobe was reading %s; nothing more to read", pid,
                     what);
        break;
    case EPERM:
    case EACCES:
        gp_error_set(err, GP_ERR_PERMISSION,
                     "cannot read %s of process %d: permission denied; run as the process's "
                     "user or as root (needs CAP_SYS_PTRACE; check "
                     "/proc/sys/kernel/yama/ptrace_scope)",
                     what, pid);
        break;
    default:
        gp_error_set(err, GP_ERR_INTERNAL, "cannot read %s of process %d: %s", what, pid,
                     strerror(errnum));
        break;
    }
    return err->code;
}
