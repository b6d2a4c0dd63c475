/* The value types of a Python frame as gilprobe keeps it: the code object
 * it runs (read once, cached by address) and the line it is at. Every layer
 * that holds stacks needs these, and nothing of how they were read. */
#ifndef GILPROBE_FRAME_H
#define GILPROBE_FRAME_H
#include <stdbool.h>
#include <stdint.h>

struct code_info {
    uint64_t addr;
    const char *name;     /* qualified name on 3.11+ */
    const char *filename;
    int firstlineno;
    bool native;          /* a C function's pseudo code object (--native) */
    int firsttraceable;   /* 3.11+: first traceable code unit */
    int32_t flags;        /* co_flags; -1 when this version's layout does not say */
    uint8_t *linetable;
    uint32_t linetable_len;
    /* The last few (offset -> line) answers: a sampled loop asks about the
     * same handful of instructions over and over. */
    long memo_offset[4];
    int memo_line[4];
    unsigned memo_next;
    /* 3.14t: the threads' own copies of the bytecode (co_tlbc), the last
     * few (copy index -> address) answers; ncodeunits bounds each copy. */
    uint32_t ncodeunits;
    int32_t tlbc_index[4];
    uint64_t tlbc_base[4];
    unsigned tlbc_next;
    uint64_t fingerprint; /* of the header fields it was read from */
    uint64_t seen_epoch;  /* last sample that used it */
    struct code_info *retired_next;
};

struct py_frame {
    struct code_info *code; /* owned by the pyobj cache */
    int line;               /* -1 when the instruction has none */
    /* The outermost frame its _PyEval_EvalFrameDefault call runs: native
     * stacks are merged at these boundaries (see native/merge.h). */
    bool entry;
};

#endif
