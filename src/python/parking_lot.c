#include "python/parking_lot.h"

#include <string.h>

/* A wait entry lives in the parking thread's frame, just above its stack
 * pointer while it sleeps. */
#define STACK_WINDOW (64 * 1024)
/* Words before the semaphore that may hold the lock's address: `addr` is
 * the field just before `sema`; _PyUnpark (3.14) or park_arg come first. */
#define CANDIDATE_WORDS 3
/* PyMutex bits: _Py_LOCKED | _Py_HAS_PARKED, both set while a waiter is
 * parked on a held lock. */
#define PYMUTEX_LOCKED_PARKED 3

uint64_t parking_lot_lock_key(struct pyrt *rt, uint64_t futex, uint64_t sp)
{
    if (rt->version_hex < 0x030D0000 || !sp || futex < sp || futex - sp > STACK_WINDOW ||
        futex < 8 * CANDIDATE_WORDS)
        return futex;
    uint64_t words[CANDIDATE_WORDS];
    if (remote_read(&rt->mem, futex - sizeof words, words, sizeof words) != 0)
        return futex;
    for (int i = CANDIDATE_WORDS - 1; i >= 0; i--) {
        uint64_t addr = words[i];
        /* A heap or static lock, not another stack slot or a small integer. */
        if (addr < 4096 || (addr >= sp && addr - sp <= STACK_WINDOW))
            continue;
        uint8_t bits;
        if (remote_read(&rt->mem, addr, &bits, 1) == 0 &&
            (bits & PYMUTEX_LOCKED_PARKED) == PYMUTEX_LOCKED_PARKED)
            return addr;
    }
    return futex;
}
