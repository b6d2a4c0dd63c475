/* The GIL as seen from outside: where its struct is and what it says. */
#ifndef GILPROBE_GIL_H
#define GILPROBE_GIL_H
#include <stdbool.h>
#include <stdint.h>

#include "python/pyrt.h"

#define GIL_READ_MAX PY_READ_GIL

struct gil_state {
    uint64_t addr;        /* 0 when it could not be located */
    uint32_t size;
    int locked;           /* -1 not created, 0 free, 1 held */
    bool enabled;         /* false: a free-threaded build's GIL is off */
    uint64_t last_holder;
    uint64_t holder;      /* tstate holding it, 0 when free */
    uint64_t switch_number;
    uint64_t interval_us;
    bool counters_known;  /* switch_number and interval_us were read: not
                           * for a version read through _Py_DebugOffsets,
                           * which publishes neither */
};

/* Address of the main interpreter's GIL struct; 0 if unreadable. */
uint64_t gil_locate(struct pyrt *rt);
/* Where <=3.11 keeps the holder's tstate (gilstate.tstate_current), else 0. */
uint64_t gil_tstate_current_addr(const struct pyrt *rt);
/* Fills g from the struct's bytes (gil_size of them) and, <=3.11, the
 * value of tstate_current. */
void gil_decode(const struct pyrt *rt, uint64_t addr, const uint8_t *buf, uint64_t tstate_current,
                struct gil_state *g);
/* Locates, reads and decodes; g->addr is 0 on failure. */
void gil_read(struct pyrt *rt, struct gil_state *g);

#endif
