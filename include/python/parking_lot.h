/* Which lock a PyMutex waiter waits for. From 3.13 on, CPython's own locks
 * (PyMutex: threading.Lock from 3.14, and the free-threaded build's
 * internals) park a waiting thread on a semaphore inside a wait entry on
 * that thread's own stack (Python/parking_lot.c: struct wait_entry
 * { park_arg or _PyUnpark, uintptr_t addr, _PySemaphore sema, ... }), so
 * its futex address differs per waiter. The lock's address sits a few
 * words before that futex. */
#ifndef GILPROBE_PARKING_LOT_H
#define GILPROBE_PARKING_LOT_H
#include <stdint.h>

#include "python/pyrt.h"

/* The PyMutex address the waiter blocked on `futex` (its user stack
 * pointer `sp`) waits for, or `futex` itself when that is not a parking-lot
 * wait. Costs one or two small reads; callers cache per (thread, futex). */
uint64_t parking_lot_lock_key(struct pyrt *rt, uint64_t futex, uint64_t sp);

#endif
