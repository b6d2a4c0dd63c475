#include "python/debug_offsets.h"

#include <stdio.h>
#include <string.h>

extern const struct py_layout py_generated_layouts[];
extern const size_t py_generated_layout_count;

const struct py_layout *debug_offsets_template(bool free_threaded)
{
    const struct py_layout *best = NULL;
    for (size_t i = 0; i < py_generated_layout_count; i++) {
        const struct py_layout *L = &py_generated_layouts[i];
        if (L->dbg_size > 0 && (L->free_threaded == 1) == free_threaded &&
            (!best || L->version_hex > best->version_hex))
            best = L;
    }
    return best;
}

size_t debug_offsets_read_size(bool free_threaded)
{
    const struct py_layout *T = debug_offsets_template(free_threaded);
    return T ? (size_t)T->dbg_size : 0;
}

/* Which section of the block bounds a field: its value must lie inside
 * the struct whose size that section states. */
enum section {
    SEC_RUNTIME, SEC_INTERP, SEC_TSTATE, SEC_IFRAME, SEC_CODE, SEC_OBJECT, SEC_TYPE, SEC_BYTES,
    SEC_STR, SEC_COUNT
};

/* Largest plausible size of each struct: a corrupted size would make
 * every offset "inside" it. */
static const uint64_t section_max[SEC_COUNT] = {16u << 20, 4u << 20, 64u << 10, 1024, 4096,
                                                64, 4096, 256, 256};
static const char *const section_name[SEC_COUNT] = {
    "runtime_state", "interpreter_state", "thread_state", "interpreter_frame", "code_object",
    "pyobject",      "type_object",       "bytes_object", "unicode_object"};

#define LAYOUT_AT(L, off) (*(int32_t *)((char *)(L) + (off)))
#define CLAYOUT_AT(L, off) (*(const int32_t *)((const char *)(L) + (off)))

struct published {
    const char *name; /* as _Py_DebugOffsets names it */
    size_t field;     /* offsetof(struct py_layout, <field>) */
    size_t position;  /* offsetof(struct py_layout, dbg_<field>) */
    enum section sec;
    bool size_value; /* a size (may equal its section's size), not an offset */
    bool free_threaded_only;
};

#define PUBLISHED(f, s, n, size, ft)                                                             \
    {n, offsetof(struct py_layout, f), offsetof(struct py_layout, dbg_##f), s, size, ft}
#define PUB(f, s, n) PUBLISHED(f, s, n, false, false)
#define PUB_SIZE(f, s, n) PUBLISHED(f, s, n, true, false)
#define PUB_FT(f, s, n) PUBLISHED(f, s, n, false, true)

static const struct published fields[] = {
    PUB(rt_interpreters_head, SEC_RUNTIME, "interpreters_head"),
    PUB(interp_next, SEC_INTERP, "next"),
    PUB(interp_threads_head, SEC_INTERP, "threads_head"),
    PUB(interp_ceval_gil, SEC_INTERP, "ceval_gil"),
    PUB(ts_next, SEC_TSTATE, "next"),
    PUB(ts_interp, SEC_TSTATE, "interp"),
    PUB(ts_current_frame, SEC_TSTATE, "current_frame"),
    PUB(ts_thread_id, SEC_TSTATE, "thread_id"),
    PUB(ts_native_thread_id, SEC_TSTATE, "native_thread_id"),
    PUB(iframe_previous, SEC_IFRAME, "previous"),
    PUB(iframe_code, SEC_IFRAME, "executable"),
    PUB(iframe_instr, SEC_IFRAME, "instr_ptr"),
    PUB(iframe_owner, SEC_IFRAME, "owner"),
    PUB_FT(iframe_tlbc_index, SEC_IFRAME, "tlbc_index"),
    PUB(code_filename, SEC_CODE, "filename"),
    PUB(code_name, SEC_CODE, "name"),
    PUB(code_qualname, SEC_CODE, "qualname"),
    PUB(code_linetable, SEC_CODE, "linetable"),
    PUB(code_firstlineno, SEC_CODE, "firstlineno"),
    PUB(code_code_adaptive, SEC_CODE, "co_code_adaptive"),
    PUB_FT(code_tlbc, SEC_CODE, "co_tlbc"),
    PUB(obj_type, SEC_OBJECT, "ob_type"),
    PUB(type_name, SEC_TYPE, "tp_name"),
    PUB(bytes_size, SEC_BYTES, "ob_size"),
    PUB(bytes_data, SEC_BYTES, "ob_sval"),
    PUB(str_length, SEC_STR, "length"),
    PUB(str_state, SEC_STR, "state"),
    PUB_SIZE(str_ascii_data, SEC_STR, "asciiobject_size"),
    PUB_SIZE(str_compact_data, SEC_STR, "compactunicodeobject_size"),
};

static bool value_at(const uint8_t *table, size_t len, int32_t position, uint64_t *v)
{
    if (position < 0 || (size_t)position + 8 > len)
        return false;
    memcpy(v, table + position, 8);
    return true;
}

/* The GIL embedded in the interpreter: where its fields sit relative to
 * its start, and where it ends (the next published interpreter field
 * after it, or the interpreter's end). */
static int gil_fields(const uint8_t *table, size_t len, const struct py_layout *T,
                      uint64_t interp_size, bool free_threaded, struct py_layout *L, char *why,
                      size_t whysz)
{
    uint64_t start, locked, holder, enabled = 0, end = interp_size, next;
    if (!value_at(table, len, T->dbg_interp_gil_state, &start) ||
        !value_at(table, len, T->dbg_interp_gil_locked, &locked) ||
        !value_at(table, len, T->dbg_interp_gil_holder, &holder) ||
        (free_threaded && !value_at(table, len, T->dbg_interp_gil_enabled, &enabled))) {
        snprintf(why, whysz, "the GIL's fields are not in the block");
        return -1;
    }
    if (value_at(table, len, T->dbg_interp_code_generation, &next) && next > start && next < end)
        end = next;
    if (start >= interp_size || locked < start || holder < start || locked + 4 > end ||
        holder + 8 > end || (free_threaded && (enabled < start || enabled + 4 > end))) {
        snprintf(why, whysz,
                 "interpreter_state's GIL fields (at %llu, locked %llu, holder %llu) do not lie "
                 "inside the interpreter (%llu bytes)",
                 (unsigned long long)start, (unsigned long long)locked, (unsigned long long)holder,
                 (unsigned long long)interp_size);
        return -1;
    }
    uint64_t size = end - start;
    L->gil_size = (int32_t)(size < PY_READ_GIL ? size : PY_READ_GIL);
    L->gil_locked = (int32_t)(locked - start);
    L->gil_last_holder = (int32_t)(holder - start);
    L->gil_enabled = free_threaded ? (int32_t)(enabled - start) : OFF_NONE;
    return 0;
}

int debug_offsets_layout(const uint8_t *table, size_t len, unsigned version_hex, bool free_threaded,
                         struct py_layout *out, char *why, size_t whysz)
{
    const struct py_layout *T = debug_offsets_template(free_threaded);
    if (!T) {
        snprintf(why, whysz, "this gilprobe knows no _Py_DebugOffsets layout");
        return -1;
    }
    if (len < 24 || memcmp(table, DEBUG_OFFSETS_COOKIE, 8) != 0) {
        snprintf(why, whysz, "no \"%s\" cookie at the start of _PyRuntime", DEBUG_OFFSETS_COOKIE);
        return -1;
    }
    uint64_t v;
    memcpy(&v, table + 8, 8);
    if (v != version_hex || (v >> 24) != 3 || v < DEBUG_OFFSETS_MIN_VERSION) {
        snprintf(why, whysz, "its version field (0x%llx) is no CPython 3.13 or later",
                 (unsigned long long)v);
        return -1;
    }
    const int32_t sec_pos[SEC_COUNT] = {T->dbg_sec_runtime, T->dbg_sec_interp, T->dbg_sec_tstate,
                                        T->dbg_sec_iframe,  T->dbg_sec_code,   T->dbg_sec_object,
                                        T->dbg_sec_type,    T->dbg_sec_bytes,  T->dbg_sec_str};
    uint64_t sec_size[SEC_COUNT];
    for (int s = 0; s < SEC_COUNT; s++) {
        if (!value_at(table, len, sec_pos[s], &sec_size[s]) || sec_size[s] == 0 ||
            sec_size[s] > section_max[s]) {
            snprintf(why, whysz, "%s.size (%llu) is not a plausible size", section_name[s],
                     (unsigned long long)sec_size[s]);
            return -1;
        }
    }
    struct py_layout L;
#define X(name) L.name = OFF_NONE;
    PY_LAYOUT_FIELDS(X)
#undef X
#define X(name) L.dbg_##name = OFF_NONE;
    PY_DEBUG_FIELDS(X)
    PY_DEBUG_EXTRA(X)
#undef X
    L.dbg_size = 0;
    L.header_version = NULL;
    L.version_hex = (int32_t)version_hex;
    L.free_threaded = free_threaded;
    L.frame_model = T->frame_model;
    L.linetable_format = T->linetable_format;
    L.lasti_scale = T->lasti_scale;
    L.owner_cstack = T->owner_cstack;
    L.owner_generator = T->owner_generator;
    L.runtime_size = (int32_t)sec_size[SEC_RUNTIME];
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const struct published *f = &fields[i];
        int32_t pos = CLAYOUT_AT(T, f->position);
        if (f->free_threaded_only && !free_threaded)
            continue;
        if (pos < 0)
            continue; /* not published by the template's block: absent */
        if (!value_at(table, len, pos, &v))
            continue;
        uint64_t limit = sec_size[f->sec];
        if (f->size_value ? (v == 0 || v > limit) : v >= limit) {
            snprintf(why, whysz, "%s.%s (%llu) lies outside the %llu bytes the block states",
                     section_name[f->sec], f->name, (unsigned long long)v,
                     (unsigned long long)limit);
            return -1;
        }
        LAYOUT_AT(&L, f->field) = (int32_t)v;
    }
    if (gil_fields(table, len, T, sec_size[SEC_INTERP], free_threaded, &L, why, whysz) != 0)
        return -1;
    const char *bad = py_layout_check(&L);
    if (bad) {
        snprintf(why, whysz, "its %s offsets do not fit the reads gilprobe makes", bad);
        return -1;
    }
    if (L.ts_native_thread_id < 0 || L.ts_current_frame < 0 || L.interp_threads_head < 0 ||
        L.rt_interpreters_head < 0 || L.code_linetable < 0) {
        snprintf(why, whysz, "it does not publish the thread and frame fields gilprobe walks");
        return -1;
    }
    *out = L;
    return 0;
}
