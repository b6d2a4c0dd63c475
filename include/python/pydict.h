/* Dicts, ints, instance attributes and modules of the target, read from
 * outside. Everything is bounded and type-checked: an unreadable or
 * implausible object reads as nothing (-1 or 0), never as garbage. */
#ifndef GILPROBE_PYDICT_H
#define GILPROBE_PYDICT_H
#include <stdbool.h>
#include <stdint.h>

#include "python/pyobj.h"
#include "python/pyrt.h"

#define PYDICT_MAX_ENTRIES 65536 /* entries one dict read walks */

struct pydict_entry {
    uint64_t key, value;
};

/* Up to max live entries of the dict at `dict`; -1 when it is not a
 * readable dict. */
int pydict_entries(struct pyrt *rt, uint64_t dict, struct pydict_entry *out, int max);
/* The value of str key `name` among e[0..n); 0 when absent. */
uint64_t pydict_find_str(struct pyrt *rt, struct pyobj_cache *c, const struct pydict_entry *e, int n,
                         const char *name);
/* An int object that fits 64 bits, not negative; false otherwise. */
bool pyint_u64(struct pyrt *rt, uint64_t obj, uint64_t *v);
/* An instance's attributes, wherever this version keeps them (a dict, or
 * values beside or inside the object); -1 when unreadable. */
int pyobj_instance_attrs(struct pyrt *rt, uint64_t obj, struct pydict_entry *out, int max);
/* The dict of module `name` of the main interpreter (sys.modules); 0 when
 * not found, with *imported false when sys.modules was read and has no
 * such module. */
uint64_t pymodule_find(struct pyrt *rt, struct pyobj_cache *c, const char *name, bool *imported);
#define PYSET_MAX_SLOTS (1u << 20) /* a set's hash table, at most */
/* The live items of the set at `set` (type-checked): up to max, in table
 * order; -1 when it is not a readable set. */
int pyset_items(struct pyrt *rt, uint64_t set, uint64_t *out, int max);
/* The items of a list / tuple: -1 when it is not one, or has more than max. */
int pylist_items(struct pyrt *rt, uint64_t list, uint64_t *out, int max);
int pytuple_items(struct pyrt *rt, uint64_t tuple, uint64_t *out, int max);
/* The first items of a list, however long it is: how many were read (at
 * most max), its length in *size; -1 when it is not a readable list. */
int pylist_prefix(struct pyrt *rt, uint64_t list, uint64_t *out, int max, uint64_t *size);
/* True or False; false when obj is not a bool. */
bool pybool(struct pyrt *rt, uint64_t obj, bool *v);
/* Attribute `name` of an instance (pyobj_instance_attrs); 0 when absent
 * or unreadable. */
uint64_t pyobj_attr(struct pyrt *rt, struct pyobj_cache *c, uint64_t obj, const char *name);
/* Attribute `name` of a module, by its dict; 0 when absent. */
uint64_t pymodule_attr(struct pyrt *rt, struct pyobj_cache *c, uint64_t mdict, const char *name);

#endif
