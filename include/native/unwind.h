/* --native: C stacks of the target's threads, unwound with libunwind from
 * outside (ptrace; CFI, so no frame pointers needed) while that one thread
 * is stopped, and symbolised afterwards with elfutils (symbol tables,
 * DWARF lines). One session per target keeps every cache warm: libunwind's
 * address space with global caching, one Dwfl for the process's modules
 * and a table of already-resolved addresses. */
#ifndef GILPROBE_NATIVE_H
#define GILPROBE_NATIVE_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "python/pyobj.h"
#include "util/errors.h"

#define NATIVE_MAX_FRAMES 256
/* Bound on one thread's stop: the wait for it to stop, then the unwind. */
#define NATIVE_STOP_TIMEOUT_MS 100
#define NATIVE_UNWIND_BUDGET_US 20000
/* The sampler's default rate with --native. */
#define NATIVE_DEFAULT_HZ 100.0

/* What a function on the stack says about the thread (innermost wins). */
enum native_role {
    NROLE_NONE = 0,
    NROLE_EVAL,     /* _PyEval_EvalFrameDefault: replaced by Python frames */
    NROLE_TAKE_GIL, /* waiting for (or spinning to take) the GIL */
    NROLE_DROP_GIL, /* releasing it */
    NROLE_LOCK,     /* a lock acquire: PyThread_acquire_lock_timed, sem_*wait, futex */
    NROLE_GC,       /* the cyclic garbage collector */
};

struct native_sym {
    const char *func;   /* NULL when no symbol covers the address (stripped) */
    const char *lib;    /* basename of the mapped object, "?" when unmapped */
    uint64_t offset;    /* address in the object's own ELF address space */
    const char *file;   /* source file from DWARF, or NULL */
    int line;           /* -1 without DWARF */
    enum native_role role;
    /* The frame as a pseudo code object (name: function or lib+offset,
     * file: "[lib]"), so the sampler's stack tables take mixed stacks
     * as they are. One per function: samples aggregate by function. */
    struct code_info *code;
};

struct native_stack {
    uint64_t ip[NATIVE_MAX_FRAMES]; /* innermost first; return addresses for callers */
    int n;
    bool truncated;    /* stopped early: budget, depth or an unwind error */
    uint64_t pause_ns;   /* stop request to resume: the most it was stopped */
    uint64_t stopped_ns; /* stop seen to resume: the least (the unwind's own cost) */
};

struct native_session;

/* GP_OK or an exit code with err filled (libunwind/elfutils setup). */
int native_open(pid_t pid, bool want_lines, struct native_session **out, struct gp_error *err);
void native_close(struct native_session *s);
/* Stops tid alone (unless already_stopped: --blocking did it), unwinds it,
 * calls while_stopped (e.g. to read its Python stack consistently) and
 * resumes it, also on every error path. GP_OK or an exit code. */
int native_unwind(struct native_session *s, pid_t tid, bool already_stopped,
                  void (*while_stopped)(void *arg), void *arg, struct native_stack *out,
                  struct gp_error *err);
/* Symbol of frame i of st (callers are looked up at their call site). Never
 * NULL; cached for the session's life. */
const struct native_sym *native_symbol(struct native_session *s, const struct native_stack *st,
                                       int i);

#endif
