#include "python/thread_names.h"
#include "python/work_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on what one read walks: sys.modules and _active entries, an
 * instance's attributes, an int's digits. */
#define DICT_MAX_ENTRIES 65536
#define ATTRS_MAX_ENTRIES 256
#define KEYS_HEADER 64
#define DK_GENERAL 0 /* dk_kind: entries with a hash; else (key, value) only */

#define NO_THREADING "threading is not imported"
#define NO_TABLE "threading._active could not be read"
#define NOT_THREAD "not a threading.Thread (started through _thread)"
#define UNPUBLISHED "dict layouts are not published by this version's _Py_DebugOffsets"

struct entry {
    uint64_t key, value;
};

void thread_names_init(struct thread_names *tn)
{
    memset(tn, 0, sizeof *tn);
}

void thread_names_free(struct thread_names *tn)
{
    free(tn->v);
    thread_names_init(tn);
}

static bool read_u64(struct pyrt *rt, uint64_t addr, uint64_t *v)
{
    return addr && remote_u64(&rt->mem, addr, v);
}

/* Entries of a keys object; values from `values` (a split table's array,
 * 0 for a combined table). Returns the count of live entries, -1 when the
 * keys object is not plausible. */
static int keys_entries(struct pyrt *rt, uint64_t keys, uint64_t values, struct entry *out, int max)
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
    if (nentries < 0 || nentries > DICT_MAX_ENTRIES)
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
            struct entry e;
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

/* Entries of the dict at `dict` (type-checked). */
static int dict_entries(struct pyrt *rt, uint64_t dict, struct entry *out, int max)
{
    const struct py_layout *L = &rt->layout;
    uint64_t keys, values;
    if (!dict || !pyobj_type_is(rt, dict, "dict") || !read_u64(rt, dict + (uint64_t)L->dict_keys, &keys) ||
        !read_u64(rt, dict + (uint64_t)L->dict_values, &values))
        return -1;
    return keys_entries(rt, keys, values ? values + (uint64_t)L->dict_values_values : 0, out, max);
}

/* The value of str key `name` among entries; 0 when absent. */
static uint64_t find_str_key(struct pyrt *rt, struct pyobj_cache *c, const struct entry *e, int n,
                             const char *name)
{
    for (int i = 0; i < n; i++) {
        const char *k = pyobj_str(rt, c, e[i].key);
        if (k && strcmp(k, name) == 0)
            return e[i].value;
    }
    return 0;
}

/* An int that fits 64 bits (a thread ident); false otherwise. */
static bool read_int(struct pyrt *rt, uint64_t obj, uint64_t *v)
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

/* A Thread's attributes: wherever this version keeps an instance's. */
static int instance_attrs(struct pyrt *rt, uint64_t obj, struct entry *out, int max)
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
        return dict_entries(rt, dict, out, max);
    }
    read_u64(rt, type + (uint64_t)L->heap_cached_keys, &keys);
    if (!read_u64(rt, obj + (uint64_t)(int64_t)L->managed_dict, &word))
        return -1;
    if (L->dict_model == 1) { /* 3.11: the dict, or values beside it */
        uint64_t values;
        if (word)
            return dict_entries(rt, word, out, max);
        if (!read_u64(rt, obj + (uint64_t)(int64_t)L->managed_values, &values) || !values)
            return -1;
        return keys_entries(rt, keys, values, out, max);
    }
    if (L->dict_model == 2) /* 3.12: one word, the values' address - 1 when values */
        return (word & 1) ? keys_entries(rt, keys, word + 1, out, max)
                          : dict_entries(rt, word, out, max);
    /* 3.13+: inline values after the object while valid, else the dict. */
    if (word)
        return dict_entries(rt, word, out, max);
    if (L->flag_inline_values < 0 || !(flags & (uint64_t)L->flag_inline_values) ||
        basicsize <= 0 || basicsize > 4096)
        return -1;
    uint64_t values = obj + (uint64_t)basicsize;
    uint8_t valid = 0;
    if (remote_read(&rt->mem, values + (uint64_t)L->dict_values_valid, &valid, 1) != 0 || !valid)
        return -1;
    return keys_entries(rt, keys, values + (uint64_t)L->dict_values_values, out, max);
}

/* threading._active, through sys.modules of the main interpreter (the
 * list's head is the newest interpreter, a subinterpreter's own modules). */
static uint64_t find_active(struct pyrt *rt, struct pyobj_cache *c, const char **why)
{
    const struct py_layout *L = &rt->layout;
    uint64_t interp = pyrt_main_interp(rt), modules = 0;
    *why = NO_TABLE;
    if (!interp || !read_u64(rt, interp + (uint64_t)L->interp_modules, &modules) || !modules)
        return 0;
    struct entry *e = malloc(DICT_MAX_ENTRIES * sizeof *e);
    if (!e)
        return 0;
    int n = dict_entries(rt, modules, e, DICT_MAX_ENTRIES);
    uint64_t mod = n > 0 ? find_str_key(rt, c, e, n, "threading") : 0, mdict = 0, active = 0;
    if (n > 0 && !mod)
        *why = NO_THREADING;
    if (mod && pyobj_type_is(rt, mod, "module") && read_u64(rt, mod + (uint64_t)L->module_dict, &mdict)) {
        n = dict_entries(rt, mdict, e, DICT_MAX_ENTRIES);
        active = n > 0 ? find_str_key(rt, c, e, n, "_active") : 0;
    }
    free(e);
    return active;
}

static bool names_supported(const struct py_layout *L)
{
    return L->dict_model >= 0 && L->interp_modules >= 0 && L->dk_nentries >= 0 &&
           L->dk_indices >= 0 && L->long_model >= 0 && L->type_flags >= 0;
}

void thread_names_read(struct pyrt *rt, struct pyobj_cache *c, struct thread_names *tn)
{
    tn->n = 0;
    if (!names_supported(&rt->layout)) {
        tn->why_none = UNPUBLISHED;
        return;
    }
    struct entry *threads = malloc(THREAD_NAMES_MAX * sizeof *threads);
    struct entry attrs[ATTRS_MAX_ENTRIES];
    if (!threads || (!tn->v && !(tn->v = calloc(THREAD_NAMES_MAX, sizeof *tn->v)))) {
        free(threads);
        tn->why_none = NO_TABLE;
        return;
    }
    int n = tn->active ? dict_entries(rt, tn->active, threads, THREAD_NAMES_MAX) : -1;
    if (n < 0) { /* not found yet, or no longer a dict: look it up again */
        tn->active = find_active(rt, c, &tn->why_none);
        n = tn->active ? dict_entries(rt, tn->active, threads, THREAD_NAMES_MAX) : -1;
    }
    if (n < 0) {
        free(threads);
        return;
    }
    tn->why_none = NULL;
    for (int i = 0; i < n; i++) {
        uint64_t ident, name_obj;
        int na = read_int(rt, threads[i].key, &ident)
                     ? instance_attrs(rt, threads[i].value, attrs, ATTRS_MAX_ENTRIES)
                     : -1;
        if (na <= 0 || !(name_obj = find_str_key(rt, c, attrs, na, "_name")))
            continue;
        char *name = pyobj_str_copy(rt, c, name_obj); /* one per thread: not cached */
        if (!name)
            continue;
        struct thread_name *t = &tn->v[tn->n++];
        t->ident = ident;
        snprintf(t->name, sizeof t->name, "%s", name);
        free(name);
        /* A pool worker's Thread keeps its target's args while it runs. */
        uint64_t args = find_str_key(rt, c, attrs, na, "_args");
        t->work_queue = args ? work_queue_in_args(rt, args) : 0;
    }
    free(threads);
}

const char *thread_names_find(const struct thread_names *tn, uint64_t ident, const char **why)
{
    for (uint32_t i = 0; i < tn->n; i++)
        if (tn->v[i].ident == ident) {
            *why = NULL;
            return tn->v[i].name;
        }
    *why = tn->why_none ? tn->why_none : NOT_THREAD;
    return NULL;
}

uint64_t thread_names_work_queue(const struct thread_names *tn, uint64_t ident)
{
    for (uint32_t i = 0; i < tn->n; i++)
        if (tn->v[i].ident == ident)
            return tn->v[i].work_queue;
    return 0;
}

void thread_display_name(const char *python_name, const char *os_name, const char *process_name,
                         char *out, size_t outsz)
{
    if (!python_name || !*python_name) {
        snprintf(out, outsz, "%s", os_name);
        return;
    }
    size_t on = strlen(os_name);
    /* The kernel keeps 15 bytes of a thread's name. */
    bool same = strcmp(python_name, os_name) == 0 ||
                (on == 15 && strncmp(python_name, os_name, on) == 0) ||
                (process_name && strcmp(os_name, process_name) == 0);
    if (same)
        snprintf(out, outsz, "%s", python_name);
    else
        snprintf(out, outsz, "%s [%s]", python_name, os_name);
}
