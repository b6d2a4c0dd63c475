#include "sample/idle_wait.h"

#include <stdlib.h>
#include <string.h>

#include "target/proc.h"

/* Python functions whose futex wait is a wait for a notification or for
 * work, by the file they are in (its path's end) and their unqualified
 * name (3.8-3.10 code objects carry no qualified name). Only the innermost
 * Python frame counts: `with cond:` (Condition.__enter__) and `with lock:`
 * are the critical sections they guard, i.e. lock contention. */
static const struct {
    const char *file;
    const char *names[8];
} IDLE_FUNCTIONS[] = {
    /* Condition.wait/wait_for (under Event.wait, Queue.get/put/join,
     * Future.result, Barrier.wait ...), Semaphore/BoundedSemaphore.acquire,
     * Barrier._wait, Thread.join and its _wait_for_tstate_lock (<= 3.12). */
    {"/threading.py", {"wait", "wait_for", "acquire", "join", "_wait_for_tstate_lock", "_wait"}},
    /* queue.Queue.get/put/join; the pure-Python SimpleQueue. */
    {"/queue.py", {"get", "put", "join"}},
    /* A ThreadPoolExecutor worker between work items: work_queue.get(), a
     * C SimpleQueue, leaves no Python frame of its own. */
    {"/concurrent/futures/thread.py", {"_worker"}},
    /* multiprocessing.Pool's task handler thread, in taskqueue.get(). */
    {"/multiprocessing/pool.py", {"_handle_tasks"}},
};

bool idle_wait_stack(const struct stack_entry *e)
{
    int py = e ? stack_python_top(e) : -1;
    if (py < 0)
        return false;
    /* --native: a C frame of the SimpleQueue above the Python one. */
    for (int i = 0; i < py; i++)
        if (e->frames[i].code->name && strstr(e->frames[i].code->name, "SimpleQueue_get"))
            return true;
    const struct code_info *c = e->frames[py].code;
    if (!c->name || !c->filename)
        return false;
    const char *name = code_bare_name(c->name);
    for (size_t f = 0; f < sizeof IDLE_FUNCTIONS / sizeof IDLE_FUNCTIONS[0]; f++) {
        if (!code_file_ends_with(c->filename, IDLE_FUNCTIONS[f].file))
            continue;
        for (int k = 0; k < 8 && IDLE_FUNCTIONS[f].names[k]; k++)
            if (strcmp(name, IDLE_FUNCTIONS[f].names[k]) == 0)
                return true;
    }
    return false;
}

bool idle_classify(struct idle_classifier *ic, const struct stack_table *stacks, uint32_t stack)
{
    uint8_t *k = stack_kind_slot(&ic->kind, &ic->cap, stack);
    if (!k)
        return false;
    if (!*k)
        *k = idle_wait_stack(stack_table_get(stacks, stack)) ? 2 : 1;
    return *k == 2;
}

void idle_classifier_free(struct idle_classifier *ic)
{
    free(ic->kind);
    memset(ic, 0, sizeof *ic);
}

void queue_module_refresh(struct queue_module *q, pid_t pid, double now_s)
{
    if (q->pid == pid && (q->hi || now_s - q->checked_at < 1.0))
        return;
    q->pid = pid;
    q->lo = q->hi = 0;
    q->checked_at = now_s;
    struct proc_maps maps = {0};
    if (proc_read_maps(pid, &maps) != 0)
        return;
    for (size_t i = 0; i < maps.n; i++) {
        const struct proc_map *m = &maps.v[i];
        const char *slash = strrchr(m->path, '/');
        const char *base = slash ? slash + 1 : m->path;
        /* _queue.cpython-312-x86_64-linux-gnu.so, _queue.so ... */
        if (m->perms[2] == 'x' && strncmp(base, "_queue.", 7) == 0) {
            q->lo = m->start;
            q->hi = m->end;
            break;
        }
    }
    proc_maps_free(&maps);
}

bool idle_wait_in_queue_get(const struct queue_module *q, struct remote *mem, uint64_t sp)
{
    if (!q->hi || !sp)
        return false;
    uint64_t words[IDLE_STACK_SCAN_BYTES / 8];
    /* Near the top of a small stack the whole window may not be mapped. */
    for (size_t len = sizeof words; len >= 256; len /= 2) {
        if (remote_read(mem, sp, words, len) != 0)
            continue;
        for (size_t i = 0; i < len / 8; i++)
            if (words[i] >= q->lo && words[i] < q->hi)
                return true;
        return false;
    }
    return false;
}
