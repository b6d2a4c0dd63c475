/* Dicts, ints, instance attributes and modules of the target, read from
 * outside: bounded (PYDICT_MAX_ENTRIES) and type-checked, one rule per
 * CPython version's dict layout (pylayout.h: dict_model). */
#include "python/pydict.h"

#include <stdlib.h>
#include <string.h>

#define KEYS_HEADER 64
#define DK_GENERAL 0 /* dk_kind: entries with a hash; else (key, value) only */

#define PYOBJ_ATTR_MAX 128 /* attributes of one instance looked through for one */

static bool read_u64(struct pyrt *rt, uint64_t addr, uint64_t *v)
{
    return addr && remote_u64(&rt->mem, addr, v);
}

/* Entries of a keys object; values from `values` (a split table's array,
 * 0 for a combined table). Returns the count of live entries, -1 when the
 * keys object is not plausible. */
static int keys_entries(struct pyrt *rt, uint64_t keys, uint64_t values, struct pydict_entry *out, int max)
{
    const struct py_layout *L = &rt->layout;
    uint8_t h[KEYS_HEADER];
    if (!keys || remote_read(&rt->mem, keys, h, sizeof h) != 0)
        return -1;
    int64_t nentries;
    memcpy(&nentries, h + L->dk_nentries, 8);
    uint64_t index_bytes;
    size_t esize = (size_t)L->dict_entry_size;
    size_t kpos = 8, vpos = 16; /* in a general entry: hash, key, value */
    if (L->dk_log2_size >= 0) {
        uint8_t log2_size = h[L->dk_log2_size], log2_ib = h[L->dk_log2_index_bytes];
        if (log2_size > 30 || log2_ib > 33 || log2_ib < log2_size)
            return -1;
        index_bytes = (uint64_t)1 << log2_ib;
        if (h[L->dk_kind] != DK_GENERAL) {
            esize = (size_t)L->dict_unicode_entry_size;
            kpos = 0;
            vpos = 8;
        }
    } else {
        int64_t size;
        memcpy(&size, h + L->dk_size, 8);
        if (size < 8 || size > (1 << 30) || (size & (size - 1)))
            return -1;
        int ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
        index_bytes = (uint64_t)size * (uint64_t)ix;
    }
    if (nentries < 0 || nentries > PYDICT_MAX_ENTRIES)
        return -1;
    int n = (int)nentries < max ? (int)nentries : max;
    if (n == 0)
        return 0;
    uint8_t *raw = malloc((size_t)n * esize);
    uint64_t *vals = values ? malloc((size_t)n * 8) : NULL;
    int got = -1;
    if (raw && (!values || vals) &&
        remote_read(&rt->mem, keys + (uint64_t)L->dk_indices + index_bytes, raw,
                    (size_t)n * esize) == 0 &&
        (!values || remote_read(&rt->mem, values, vals, (size_t)n * 8) == 0)) {
        got = 0;
        for (int i = 0; i < n; i++) {
            struct pydict_entry e;
            memcpy(&e.key, raw + (size_t)i * esize + kpos, 8);
            if (values)
                e.value = vals[i];
            else
                memcpy(&e.value, raw + (size_t)i * esize + vpos, 8);
            if (e.key && e.value)
                out[got++] = e;
        }
    }
    free(raw);
    free(vals);
    return got;
}

int pydict_entries(struct pyrt *rt, uint64_t dict, struct pydict_entry *out, int max)
{
    const struct py_layout *L = &rt->layout;
    uint64_t keys, values;
    if (!dict || !pyobj_type_is(rt, dict, "dict") || !read_u64(rt, dict + (uint64_t)L->dict_keys, &keys) ||
        !read_u64(rt, dict + (uint64_t)L->dict_values, &values))
        return -1;
    return keys_entries(rt, keys, values ? values + (uint64_t)L->dict_values_values : 0, out, max);
}

uint64_t pydict_find_str(struct pyrt *rt, struct pyobj_cache *c, const struct pydict_entry *e, int n,
                         const char *name)
{
    for (int i = 0; i < n; i++) {
        const char *k = pyobj_str(rt, c, e[i].key);
        if (k && strcmp(k, name) == 0)
            return e[i].value;
    }
    return 0;
}

bool pyint_u64(struct pyrt *rt, uint64_t obj, uint64_t *v)
{
    const struct py_layout *L = &rt->layout;
    int64_t size;
    uint32_t digits[3] = {0};
    if (!pyobj_type_is(rt, obj, "int") || !read_u64(rt, obj + (uint64_t)L->long_size, (uint64_t *)&size))
        return false;
    uint64_t ndigits;
    if (L->long_model == 1) {
        if ((size & 3) == 2)
            return false; /* negative */
        ndigits = (uint64_t)size >> 3;
    } else {
        if (size < 0)
            return false;
        ndigits = (uint64_t)size;
    }
    if (ndigits > 3 || (ndigits && remote_read(&rt->mem, obj + (uint64_t)L->long_digits, digits,
                                               4 * (size_t)ndigits) != 0))
        return false;
    unsigned __int128 acc = 0;
    for (uint64_t i = ndigits; i-- > 0;)
        acc = (acc << L->long_shift) | digits[i];
    if (acc >> 64)
        return false;
    *v = (uint64_t)acc;
    return true;
}

int pyobj_instance_attrs(struct pyrt *rt, uint64_t obj, struct pydict_entry *out, int max)
{
    const struct py_layout *L = &rt->layout;
    uint64_t type, flags = 0, keys = 0, word = 0;
    int64_t dictoffset = 0, basicsize = 0;
    if (!read_u64(rt, obj + (uint64_t)L->obj_type, &type) ||
        !read_u64(rt, type + (uint64_t)L->type_flags, &flags) ||
        !read_u64(rt, type + (uint64_t)L->type_dictoffset, (uint64_t *)&dictoffset) ||
        !read_u64(rt, type + (uint64_t)L->type_basicsize, (uint64_t *)&basicsize))
        return -1;
    bool managed = L->flag_managed_dict >= 0 && (flags & (uint64_t)L->flag_managed_dict);
    if (L->dict_model == 0 || !managed) {
        uint64_t dict;
        if (dictoffset <= 0 || dictoffset > 4096 || !read_u64(rt, obj + (uint64_t)dictoffset, &dict))
            return -1;
        return pydict_entries(rt, dict, out, max);
    }
    read_u64(rt, type + (uint64_t)L->heap_cached_keys, &keys);
    if (!read_u64(rt, obj + (uint64_t)(int64_t)L->managed_dict, &word))
        return -1;
    if (L->dict_model == 1) { /* 3.11: the dict, or values beside it */
        uint64_t values;
        if (word)
            return pydict_entries(rt, word, out, max);
        if (!read_u64(rt, obj + (uint64_t)(int64_t)L->managed_values, &values) || !values)
            return -1;
        return keys_entries(rt, keys, values, out, max);
    }
    if (L->dict_model == 2) /* 3.12: one word, the values' address - 1 when values */
        return (word & 1) ? keys_entries(rt, keys, word + 1, out, max)
                          : pydict_entries(rt, word, out, max);
    /* 3.13+: inline values after the object while valid, else the dict. */
    if (word)
        return pydict_entries(rt, word, out, max);
    if (L->flag_inline_values < 0 || !(flags & (uint64_t)L->flag_inline_values) ||
        basicsize <= 0 || basicsize > 4096)
        return -1;
    uint64_t values = obj + (uint64_t)basicsize;
    uint8_t valid = 0;
    if (remote_read(&rt->mem, values + (uint64_t)L->dict_values_valid, &valid, 1) != 0 || !valid)
        return -1;
    return keys_entries(rt, keys, values + (uint64_t)L->dict_values_values, out, max);
}

uint64_t pymodule_find(struct pyrt *rt, struct pyobj_cache *c, const char *name, bool *imported)
{
    const struct py_layout *L = &rt->layout;
    uint64_t interp = pyrt_main_interp(rt), modules = 0;
    *imported = false;
    if (!interp || !read_u64(rt, interp + (uint64_t)L->interp_modules, &modules) || !modules)
        return 0;
    struct pydict_entry *e = malloc(PYDICT_MAX_ENTRIES * sizeof *e);
    if (!e)
        return 0;
    int n = pydict_entries(rt, modules, e, PYDICT_MAX_ENTRIES);
    uint64_t mod = n > 0 ? pydict_find_str(rt, c, e, n, name) : 0, mdict = 0;
    *imported = mod != 0 || n <= 0; /* unreadable: cannot say it is not */
    if (mod && (!pyobj_type_is(rt, mod, "module") ||
                !read_u64(rt, mod + (uint64_t)L->module_dict, &mdict)))
        mdict = 0;
    free(e);
    return mdict;
}

uint64_t pymodule_attr(struct pyrt *rt, struct pyobj_cache *c, uint64_t mdict, const char *name)
{
    struct pydict_entry *e = malloc(PYDICT_MAX_ENTRIES * sizeof *e);
    if (!e)
        return 0;
    int n = pydict_entries(rt, mdict, e, PYDICT_MAX_ENTRIES);
    uint64_t v = n > 0 ? pydict_find_str(rt, c, e, n, name) : 0;
    free(e);
    return v;
}

/* Deleted slots hold a dummy object, which the callers' type checks drop. */
int pyset_items(struct pyrt *rt, uint64_t set, uint64_t *out, int max)
{
    const struct py_layout *L = &rt->layout;
    uint64_t mask, table;
    if (!set || !pyobj_type_is(rt, set, "set") ||
        !remote_u64(&rt->mem, set + (uint64_t)L->set_mask, &mask) ||
        !remote_u64(&rt->mem, set + (uint64_t)L->set_table, &table) || !table ||
        mask + 1 > PYSET_MAX_SLOTS || ((mask + 1) & mask))
        return -1;
    size_t esize = (size_t)L->set_entry_size, slots = (size_t)mask + 1;
    uint8_t *raw = malloc(slots * esize);
    if (!raw || remote_read(&rt->mem, table, raw, slots * esize) != 0) {
        free(raw);
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i < slots && n < max; i++) {
        uint64_t key;
        memcpy(&key, raw + i * esize, 8);
        if (key)
            out[n++] = key;
    }
    free(raw);
    return n;
}

/* ob_item of a list or tuple of at most max items. */
static int seq_items(struct pyrt *rt, uint64_t obj, bool list, uint64_t *out, int max)
{
    const struct py_layout *L = &rt->layout;
    uint64_t size, items = obj + (uint64_t)L->tuple_items;
    if (!obj || L->var_size < 0 || !pyobj_type_is(rt, obj, list ? "list" : "tuple") ||
        !remote_u64(&rt->mem, obj + (uint64_t)L->var_size, &size) || size > (uint64_t)max ||
        (list && !remote_u64(&rt->mem, obj + (uint64_t)L->list_items, &items)))
        return -1;
    if (size && (!items || remote_read(&rt->mem, items, out, size * 8) != 0))
        return -1;
    return (int)size;
}

int pylist_prefix(struct pyrt *rt, uint64_t list, uint64_t *out, int max, uint64_t *size)
{
    const struct py_layout *L = &rt->layout;
    uint64_t items;
    if (!list || L->var_size < 0 || max < 0 || !pyobj_type_is(rt, list, "list") ||
        !remote_u64(&rt->mem, list + (uint64_t)L->var_size, size) || *size > (1ULL << 40) ||
        !remote_u64(&rt->mem, list + (uint64_t)L->list_items, &items))
        return -1;
    size_t n = *size < (uint64_t)max ? (size_t)*size : (size_t)max;
    if (n && (!items || remote_read(&rt->mem, items, out, n * 8) != 0))
        return -1;
    return (int)n;
}

bool pybool(struct pyrt *rt, uint64_t obj, bool *v)
{
    const struct py_layout *L = &rt->layout;
    uint64_t size;
    if (!pyobj_type_is(rt, obj, "bool") || !read_u64(rt, obj + (uint64_t)L->long_size, &size))
        return false;
    /* False has no digit, True one (3.12+: the count above the tag's 3 bits) */
    *v = (L->long_model == 1 ? size >> 3 : size) != 0;
    return true;
}

int pylist_items(struct pyrt *rt, uint64_t list, uint64_t *out, int max)
{
    return seq_items(rt, list, true, out, max);
}

int pytuple_items(struct pyrt *rt, uint64_t tuple, uint64_t *out, int max)
{
    return seq_items(rt, tuple, false, out, max);
}

uint64_t pyobj_attr(struct pyrt *rt, struct pyobj_cache *c, uint64_t obj, const char *name)
{
    struct pydict_entry attrs[PYOBJ_ATTR_MAX];
    int na = obj ? pyobj_instance_attrs(rt, obj, attrs, PYOBJ_ATTR_MAX) : -1;
    return na > 0 ? pydict_find_str(rt, c, attrs, na, name) : 0;
}
