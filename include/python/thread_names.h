/* Python thread names (threading.Thread.name) read from outside: the
 * target's threading._active table (thread ident -> Thread), found through
 * sys.modules, and each Thread's `_name` attribute. Everything read is
 * bounded and type-checked; a torn or unreadable table gives no names and
 * a reason, never garbage. */
#ifndef GILPROBE_THREAD_NAMES_H
#define GILPROBE_THREAD_NAMES_H
#include <stdbool.h>
#include <stdint.h>

#include "python/pyobj.h"
#include "python/pyrt.h"

#define THREAD_NAME_MAX 64
#define THREAD_NAMES_MAX 4096 /* threads of one table read */

struct thread_name {
    uint64_t ident; /* threading.get_ident(): the pthread_t */
    char name[THREAD_NAME_MAX];
    uint64_t work_queue; /* the pool queue it takes work from (python/work_queue.h), 0: none */
};

struct thread_names {
    struct thread_name *v;
    uint32_t n;
    uint64_t active;       /* &threading._active once found: later reads start there */
    const char *why_none;  /* no table was read: why (NULL when it was) */
};

void thread_names_init(struct thread_names *tn);
void thread_names_free(struct thread_names *tn);
/* Reads the table afresh (names change: Thread.name can be set any time). */
void thread_names_read(struct pyrt *rt, struct pyobj_cache *c, struct thread_names *tn);
/* The name of the thread whose ident (tstate thread_id) is `ident`; NULL
 * when it has none, with *why saying why (not a threading.Thread, or the
 * table's own reason). */
const char *thread_names_find(const struct thread_names *tn, uint64_t ident, const char **why);
/* The work queue of the thread whose ident is `ident`, as last read; 0: none. */
uint64_t thread_names_work_queue(const struct thread_names *tn, uint64_t ident);

/* The name to show for a thread: the Python name, with the OS one after
 * it in brackets when that says something more - when it is neither the
 * Python name (3.14+ copies it into the OS name, cut to 15 bytes: such a
 * cut is no difference) nor the process's own name, which every thread
 * inherits until it sets another; the OS name alone when there is no
 * Python name. */
void thread_display_name(const char *python_name, const char *os_name, const char *process_name,
                         char *out, size_t outsz);

#endif
