/* The CPython runtime of one process: where it is, which version, and the
 * layout to read it with. Built once per attach; read-only afterwards. */
#ifndef GILPROBE_PYRT_H
#define GILPROBE_PYRT_H
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "python/pylayout.h"
#include "target/proc.h"
#include "target/remote.h"
#include "util/errors.h"

struct pyrt {
    pid_t pid;
    pid_t ns_pid;          /* its PID inside its own namespace */
    uint64_t start_time;   /* to tell a reused PID */
    uint64_t image_id;     /* to tell an exec (proc_image_id) */
    struct remote mem;
    char binary[PATH_MAX]; /* the file that holds _PyRuntime */
    char binary_open[PATH_MAX + 32]; /* a path to it that works from here */
    bool shared;           /* libpython (true) or the executable (false) */
    bool free_threaded;    /* a Py_GIL_DISABLED build (3.13t+): version ends in "t" */
    bool stripped;         /* no .symtab */
    bool found_by_section; /* .PyRuntime section, not the symbol */
    uint64_t runtime;      /* &_PyRuntime in the target */
    unsigned version_hex;
    char version[32];      /* "3.12.1" */
    const char *version_source;
    struct py_layout layout;
    bool debug_offsets;    /* layout values taken from the process's table */
    bool unknown_version;  /* no generated table: read through that table alone */
    uint64_t code_type;    /* &PyCode_Type, 0 if unknown */
    uint64_t unicode_type; /* &PyUnicode_Type, 0 if unknown */
    uint64_t bytes_type;   /* &PyBytes_Type, 0 if unknown */
    /* <=3.10: offsets in struct pthread holding the main thread's TID;
     * the snapshot keeps the one that gives every thread a real TID. */
    int pthread_tid_cands[16];
    int pthread_tid_ncands;
    int pthread_tid_off; /* validated offset, -1 until known */
};

/* Finds the runtime and picks the layout. GP_OK or an exit code with
 * err filled. Never stops the target. */
int pyrt_attach(pid_t pid, struct pyrt *rt, struct gp_error *err);

/* The main interpreter's address (interpreters.main, or where the layout
 * has none, the tail of the interpreter list); 0 when unreadable. */
uint64_t pyrt_main_interp(struct pyrt *rt);

/* Picks the layout for rt->version_hex (read from rt->version_source):
 * the generated table, or for a 3.13+ version without one the process's
 * own _Py_DebugOffsets, validated (rt->unknown_version). runtime_size: the
 * _PyRuntime symbol's size to cross-check, 0 when unknown. GP_OK or an
 * exit code with err filled. */
int pyrt_choose_layout(struct pyrt *rt, uint64_t runtime_size, struct gp_error *err);

/* 3.13+: replaces layout values with those of the process's own
 * _Py_DebugOffsets table at rt->runtime, when they are all plausible. */
void pyrt_overlay_debug_offsets(struct pyrt *rt);

/* Parses "3.X.Y..." at the start of s into a PY_VERSION_HEX; 0 if not. */
unsigned pyrt_parse_version(const char *s);
void pyrt_format_version(unsigned hex, char *out, size_t outsz);

#endif
