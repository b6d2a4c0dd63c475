/* The one place that describes a CPython version's memory layout.
 * Values come from src/layouts_generated.c (tools/gen_layouts.py compiles
 * offsetof() against each version's headers); on 3.13+ the process's own
 * _Py_DebugOffsets table overrides the fields it publishes. */
#ifndef GILPROBE_PYLAYOUT_H
#define GILPROBE_PYLAYOUT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OFF_NONE (-1)

/* Every layout fact, by name. -1 means "absent in this version". */
#define PY_LAYOUT_FIELDS(X) \
    X(version_hex) X(free_threaded) X(frame_model) X(linetable_format) X(lasti_scale) \
    X(owner_cstack) X(owner_generator) \
    X(runtime_size) X(rt_interpreters_head) X(rt_interpreters_main) \
    X(rt_main_thread) X(rt_gil) X(rt_tstate_current) \
    X(interp_next) X(interp_threads_head) X(interp_ceval_gil) \
    X(gil_size) X(gil_interval) X(gil_last_holder) X(gil_locked) \
    X(gil_switch_number) X(gil_cond) X(gil_mutex) X(gil_switch_cond) \
    X(gil_switch_mutex) X(gil_enabled) \
    X(ts_next) X(ts_interp) X(ts_thread_id) X(ts_frame) \
    X(ts_native_thread_id) X(ts_cframe) X(cframe_current_frame) \
    X(ts_current_frame) X(ts_state) \
    X(frameobj_back) X(frameobj_code) X(frameobj_lasti) \
    X(iframe_code) X(iframe_instr) X(iframe_previous) X(iframe_owner) \
    X(iframe_tlbc_index) X(code_tlbc) \
    X(code_filename) X(code_name) X(code_firstlineno) X(code_linetable) \
    X(code_qualname) X(code_code_adaptive) X(code_firsttraceable) X(code_flags) \
    X(obj_type) X(type_name) X(bytes_size) X(bytes_data) \
    X(str_length) X(str_state) X(str_ascii_data) X(str_compact_data) \
    X(interp_modules) X(module_dict) X(dict_keys) X(dict_values) \
    X(dk_size) X(dk_log2_size) X(dk_log2_index_bytes) X(dk_kind) \
    X(dk_nentries) X(dk_indices) X(dict_entry_size) X(dict_unicode_entry_size) \
    X(dict_values_values) X(dict_values_valid) X(type_flags) X(type_dictoffset) \
    X(type_basicsize) X(heap_cached_keys) X(dict_model) X(managed_dict) \
    X(managed_values) X(flag_inline_values) X(flag_managed_dict) \
    X(long_model) X(long_size) X(long_digits) X(long_shift) \
    X(set_used) X(set_mask) X(set_table) X(set_entry_size) X(weakref_object) \
    X(list_items) X(var_size) X(tuple_items) X(method_self) \
    X(method_func) X(func_code) X(float_value) X(type_dict) X(type_base) \
    X(memberdescr_member) X(memberdef_offset) X(frameobj_localsplus) \
    X(gen_yf_model) X(gen_frame) X(gen_iframe) X(gen_frame_state) X(op_yield_from) \
    X(op_resume) X(op_resume_alt) X(code_code) X(gen_state_yf_plus128) \
    X(gen_state_executing_plus128) X(frameobj_valuestack) X(frameobj_stacktop) \
    X(frameobj_stackdepth) X(gen_yf_depth) X(iframe_stacktop) X(iframe_stackpointer) X(iframe_localsplus)

/* Fields that _Py_DebugOffsets (3.13+) publishes; the layout keeps, for
 * each, its byte position inside that table (dbg_<field>). */
#define PY_DEBUG_FIELDS(X) \
    X(rt_interpreters_head) X(interp_next) X(interp_threads_head) \
    X(interp_ceval_gil) X(ts_next) X(ts_interp) X(ts_current_frame) \
    X(ts_thread_id) X(ts_native_thread_id) X(iframe_previous) \
    X(iframe_code) X(iframe_instr) X(iframe_owner) X(code_filename) \
    X(code_name) X(code_qualname) X(code_linetable) X(code_firstlineno) \
    X(code_code_adaptive) X(obj_type) X(type_name) X(bytes_size) \
    X(bytes_data) X(str_length) X(str_state) X(str_ascii_data) \
    X(iframe_tlbc_index) X(code_tlbc)

/* Positions inside _Py_DebugOffsets of what only a version without a
 * generated table is read with (python/debug_offsets.h): every section's
 * size (sec_*), the interpreter's embedded GIL, the field after
 * that GIL (3.14+: where it ends) and (3.15+) the compact str header's
 * size. */
#define PY_DEBUG_EXTRA(X) \
    X(sec_runtime) X(sec_interp) X(sec_tstate) X(sec_iframe) X(sec_code) \
    X(sec_object) X(sec_type) X(sec_bytes) X(sec_str) \
    X(interp_gil_state) X(interp_gil_locked) X(interp_gil_holder) \
    X(interp_gil_enabled) X(interp_code_generation) X(str_compact_data)

enum frame_model { FRAME_OBJECTS = 0, FRAME_CFRAME = 1, FRAME_CURRENT = 2 };
enum linetable_format { LT_LNOTAB = 0, LT_310 = 1, LT_LOCATIONS = 2 };

struct py_layout {
    const char *header_version; /* e.g. "3.12.1": the headers it came from */
#define X(name) int32_t name;
    PY_LAYOUT_FIELDS(X)
#undef X
#define X(name) int32_t dbg_##name;
    PY_DEBUG_FIELDS(X)
    PY_DEBUG_EXTRA(X)
#undef X
    int32_t dbg_size; /* sizeof(_Py_DebugOffsets), 0 before 3.13 */
};

/* The fixed-size reads the layout's fields must fit in: a thread state,
 * a frame, a str header, a code object header, the GIL struct. */
#define PY_READ_TSTATE 512
#define PY_READ_FRAME 128
#define PY_READ_STR 192
#define PY_READ_CODE 512
#define PY_READ_GIL 256

/* NULL when every field fits in its read above, else the first that
 * does not (a layout from the target's memory is not trusted). */
const char *py_layout_check(const struct py_layout *L);

/* The generated table for (major, minor) of the default build (GIL) or the
 * free-threaded one (Py_GIL_DISABLED, "3.13t"), or NULL when unsupported. */
const struct py_layout *py_layout_for(int major, int minor, bool free_threaded);
/* Whether the layout locates the GIL's switch number and interval (a
 * version read through its _Py_DebugOffsets alone does not: its hand-offs
 * and switch interval are not measured). */
bool py_layout_has_gil_counters(const struct py_layout *L);
/* "3.8, 3.9, ..., 3.13t" for messages. */
const char *py_layout_supported_list(void);

#endif
