/* The chain of awaits of a suspended coroutine, read from outside: the
 * coroutine's own frame, then the coroutine (or generator) it awaits in
 * its `await`/`yield from`, and so on down to what the innermost one
 * awaits (a future's iterator, a future). An asyncio task's chain is what
 * `python -m asyncio pstree` shows under each task. How a version tells
 * that a frame is suspended in an await, and where it keeps the awaited
 * object, comes from its generated layout (gen_* fields). */
#ifndef GILPROBE_CORO_CHAIN_H
#define GILPROBE_CORO_CHAIN_H
#include <stdbool.h>
#include <stdint.h>

#include "python/pyobj.h"
#include "python/pyrt.h"
#include "python/stackwalk.h"

#define CORO_CHAIN_MAX 32 /* coroutines followed, at most */

struct coro_chain {
    struct raw_frame frames[CORO_CHAIN_MAX]; /* the outermost (the task's coroutine) first */
    int n;
    uint64_t leaf;  /* what the innermost coroutine awaits when not a coroutine; 0: none */
    bool truncated; /* deeper than CORO_CHAIN_MAX, or a cycle */
};

/* The chain from coro (a coroutine or generator object); an object of
 * another type, a finished coroutine or an unreadable one gives n == 0. */
void coro_chain_read(struct pyrt *rt, struct pyobj_cache *c, uint64_t coro, struct coro_chain *out);
/* Whether the layout says how to follow awaits (not for a version read
 * through its _Py_DebugOffsets alone). */
bool coro_chain_supported(const struct pyrt *rt);

#endif
