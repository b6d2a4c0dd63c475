/* Exit codes and the one-line error every failure ends in. */
#ifndef GILPROBE_ERRORS_H
#define GILPROBE_ERRORS_H

/* Documented in README.md ("Exit codes"); keep the two in step. */
enum gp_exit {
    GP_OK = 0,
    GP_ERR_INTERNAL = 1,    /* unexpected failure (a bug, or out of memory) */
    GP_ERR_USAGE = 2,       /* bad command line */
    GP_ERR_NO_PROCESS = 3,  /* no such process */
    GP_ERR_PERMISSION = 4,  /* not allowed to read the process */
    GP_ERR_NOT_PYTHON = 5,  /* no CPython runtime found in the process */
    GP_ERR_UNSUPPORTED = 6, /* a CPython version gilprobe does not know */
    GP_ERR_EXITED = 7,      /* the process exited while it was being read */
    GP_ERR_OUTPUT = 8,      /* could not write the report */
    GP_CHECKS_FAILED = 9,   /* a --fail-on check failed (or could not be measured) */
    GP_EXEC_FAILED = 127,   /* run: the command could not be started (as in shells) */
};

struct gp_error {
    int code;
    char msg[640];
};

/* Records the first error only: the root cause beats its consequences. */
void gp_error_set(struct gp_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps an errno from reading a process to an exit code and message. */
int gp_error_from_errno(struct gp_error *err, int errnum, int pid, const char *what);

#endif
