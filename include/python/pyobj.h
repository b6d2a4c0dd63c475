/* Reading Python objects out of the target: str, bytes, code objects.
 * Results are cached by address for the lifetime of a cache (one dump). */
#ifndef GILPROBE_PYOBJ_H
#define GILPROBE_PYOBJ_H
#include <stdbool.h>
#include <stdint.h>

#include "python/frame.h"
#include "python/pyrt.h"
#include "util/addrmap.h"

#define PYSTR_MAX_CHARS 1024
#define LINETABLE_MAX_BYTES (1 << 20)

struct pyobj_cache {
    struct addrmap strings; /* addr -> char* (UTF-8) */
    struct addrmap codes;   /* addr -> struct code_info* */
    struct addrmap types;   /* addr -> (void*)1 code type, (void*)2 str type, 3 other */
    struct addrmap type_names; /* type addr -> struct type_name* (pyobj_type_named) */
    /* 0: entries are trusted for the cache's life (one dump). A sampler
     * counts samples here: a code object can die and another be born at
     * its address, so an entry no sample used lately is checked again. */
    uint64_t epoch;
    struct code_info *retired; /* replaced entries: stacks may still point at them */
};

void pyobj_cache_init(struct pyobj_cache *c);
void pyobj_cache_free(struct pyobj_cache *c);
/* A new sample begins (see epoch). */
void pyobj_cache_next_epoch(struct pyobj_cache *c);

/* A str object as UTF-8; NULL when it is not a readable str. Cached for
 * the cache's life: for strings that live as long as code does (names,
 * file names, dict keys). */
const char *pyobj_str(struct pyrt *rt, struct pyobj_cache *c, uint64_t addr);
/* The same, read afresh and not cached (the caller frees it): for strings
 * as short-lived as a thread's name, which would grow the cache with every
 * thread a long run sees start. */
char *pyobj_str_copy(struct pyrt *rt, struct pyobj_cache *c, uint64_t addr);
/* A code object; NULL when addr is not a readable code object. */
struct code_info *pyobj_code(struct pyrt *rt, struct pyobj_cache *c, uint64_t addr);
/* Address of the bytecode that frame instruction pointer `instr` with
 * thread-local bytecode index `tlbc_index` (3.14t; 0 elsewhere) points
 * into: co_code_adaptive for copy 0, else entry tlbc_index of co_tlbc.
 * 0 when that copy cannot be read or does not hold `instr`. */
uint64_t pyobj_code_bytecode(struct pyrt *rt, struct code_info *ci, int32_t tlbc_index,
                             uint64_t instr);
/* Line of the instruction at `offset` (see linetable.h for its unit). */
int pyobj_code_line(const struct pyrt *rt, struct code_info *ci, long offset);

/* obj's type name (tp_name), cut to sz - 1 bytes; false when unreadable. */
bool pyobj_type_name(struct pyrt *rt, uint64_t obj, char *buf, size_t sz);
/* Whether obj's type is named `name` (its tp_name, at most 31 bytes). */
bool pyobj_type_is(struct pyrt *rt, uint64_t obj, const char *name);
/* The same, with each type's name remembered for the cache's epoch (a
 * dump's whole life; one sample of a sampler's, as a type can die): one
 * read per object instead of three, for walks that check many objects. */
bool pyobj_type_named(struct pyrt *rt, struct pyobj_cache *c, uint64_t obj, const char *name);

#endif
