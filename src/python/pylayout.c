#include "python/pylayout.h"

#include <stdbool.h>
#include <stdio.h>

extern const struct py_layout py_generated_layouts[];
extern const size_t py_generated_layout_count;

const struct py_layout *py_layout_for(int major, int minor, bool free_threaded)
{
    for (size_t i = 0; i < py_generated_layout_count; i++) {
        unsigned hex = (unsigned)py_generated_layouts[i].version_hex;
        if ((int)(hex >> 24) == major && (int)((hex >> 16) & 0xff) == minor &&
            (py_generated_layouts[i].free_threaded == 1) == free_threaded)
            return &py_generated_layouts[i];
    }
    return NULL;
}

/* Bytes of a read that covers the fields at offs (each `width` wide);
 * negative offsets are absent fields. */
static bool fits(const int32_t *offs, size_t n, int32_t width, int32_t limit)
{
    for (size_t i = 0; i < n; i++)
        if (offs[i] >= 0 && (int64_t)offs[i] + width > limit)
            return false;
    return true;
}

#define FITS(width, limit, ...) \
    fits((const int32_t[]){__VA_ARGS__}, sizeof((const int32_t[]){__VA_ARGS__}) / 4, width, limit)

const char *py_layout_check(const struct py_layout *L)
{
    if (!FITS(8, PY_READ_TSTATE, L->ts_next, L->ts_interp, L->ts_thread_id, L->ts_frame,
              L->ts_native_thread_id, L->ts_cframe, L->ts_current_frame))
        return "thread state";
    if (!FITS(8, PY_READ_FRAME, L->frameobj_back, L->frameobj_code, L->iframe_code,
              L->iframe_instr, L->iframe_previous) ||
        !FITS(4, PY_READ_FRAME, L->frameobj_lasti, L->iframe_tlbc_index) ||
        !FITS(1, PY_READ_FRAME, L->iframe_owner))
        return "frame";
    if (!FITS(8, PY_READ_STR, L->obj_type, L->str_length) || !FITS(4, PY_READ_STR, L->str_state))
        return "str";
    if (!FITS(8, PY_READ_CODE, L->obj_type, L->code_filename, L->code_name, L->code_qualname,
              L->code_linetable, L->code_firstlineno, L->code_firsttraceable, L->bytes_size,
              L->code_tlbc) ||
        !FITS(4, PY_READ_CODE, L->code_flags))
        return "code object";
    if (L->gil_size > PY_READ_GIL ||
        !FITS(8, L->gil_size, L->gil_last_holder, L->gil_switch_number, L->gil_interval) ||
        !FITS(4, L->gil_size, L->gil_locked))
        return "GIL";
    if (L->frame_model == FRAME_OBJECTS && (L->frameobj_lasti < 0 || L->frameobj_code < 0))
        return "frame";
    if (L->frame_model != FRAME_OBJECTS && (L->iframe_owner < 0 || L->iframe_code < 0))
        return "frame";
    return NULL;
}

bool py_layout_has_gil_counters(const struct py_layout *L)
{
    return L->gil_switch_number >= 0 && L->gil_interval >= 0;
}

const char *py_layout_supported_list(void)
{
    static char buf[128];
    if (buf[0])
        return buf;
    size_t o = 0;
    for (size_t i = 0; i < py_generated_layout_count && o < sizeof buf - 16; i++) {
        unsigned hex = (unsigned)py_generated_layouts[i].version_hex;
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%u.%u%s", i ? ", " : "", hex >> 24,
                              (hex >> 16) & 0xff,
                              py_generated_layouts[i].free_threaded == 1 ? "t" : "");
    }
    return buf;
}
