/* A worker pool's queue of waiting work, read from outside: the
 * `_queue.SimpleQueue` that a ThreadPoolExecutor hands each worker thread
 * (among the Thread's `_args` while it runs), and how many items it holds
 * now. Type-checked and bounded; anything implausible reads as nothing. */
#ifndef GILPROBE_WORK_QUEUE_H
#define GILPROBE_WORK_QUEUE_H
#include <stdbool.h>
#include <stdint.h>

#include "python/pyrt.h"

/* The SimpleQueue among the items of the tuple `args`; 0 when none. */
uint64_t work_queue_in_args(struct pyrt *rt, uint64_t args);
/* Items in the SimpleQueue at `queue` now; false when unreadable. */
bool work_queue_depth(struct pyrt *rt, uint64_t queue, int64_t *depth);

#endif
