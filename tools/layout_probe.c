/* Compiled once per CPython version by tools/gen_layouts.py against that
 * version's installed headers (internal ones included); prints one
 * "field value" line per layout fact gilprobe needs.  -1 = absent. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include <opcode.h> /* YIELD_FROM, RESUME: how a coroutine awaits */
#if PY_VERSION_HEX < 0x03090000
#include "internal/pycore_pystate.h"
#else
#include "internal/pycore_runtime.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_pystate.h"
#endif
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_frame.h"
#include "internal/pycore_code.h"
#else
#include <frameobject.h>
#endif
#include <structmember.h> /* PyMemberDef before 3.12 */
#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_tstate.h"
#endif
#if PY_VERSION_HEX >= 0x030A0000
#include "internal/pycore_moduleobject.h"
#endif
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_dict.h"
#include "internal/pycore_object.h"
#endif

#define P(name, expr) printf("%s %ld\n", name, (long)(expr))
#define NONE(name) printf("%s -1\n", name)

int main(void)
{
    P("version_hex", PY_VERSION_HEX);
    /* Free-threaded build (3.13t+): other object headers, a GIL that is
     * off unless something turns it on. */
#ifdef Py_GIL_DISABLED
    P("free_threaded", 1);
#else
    P("free_threaded", 0);
#endif
    /* 0: PyFrameObject chain (<=3.10); 1: _PyCFrame -> _PyInterpreterFrame
     * (3.11, 3.12); 2: tstate->current_frame (3.13+). */
#if PY_VERSION_HEX < 0x030B0000
    P("frame_model", 0);
#elif PY_VERSION_HEX < 0x030D0000
    P("frame_model", 1);
#else
    P("frame_model", 2);
#endif
    /* 0: co_lnotab (3.8, 3.9); 1: 3.10 co_linetable; 2: 3.11+ location table */
#if PY_VERSION_HEX < 0x030A0000
    P("linetable_format", 0);
#elif PY_VERSION_HEX < 0x030B0000
    P("linetable_format", 1);
#else
    P("linetable_format", 2);
#endif
    /* f_lasti unit in bytes: 3.8/3.9 count bytes, 3.10 code units */
#if PY_VERSION_HEX < 0x030A0000
    P("lasti_scale", 1);
#else
    P("lasti_scale", 2);
#endif
    /* Interpreter frames that are not Python code: owners from this value
     * up. 3.12-3.14: FRAME_OWNED_BY_CSTACK; 3.15 dropped it and, as its own
     * _PyFrame_IsIncomplete says, frames owned by FRAME_OWNED_BY_INTERPRETER
     * or above are not Python code. */
#if PY_VERSION_HEX >= 0x030F0000
    P("owner_cstack", FRAME_OWNED_BY_INTERPRETER);
#elif PY_VERSION_HEX >= 0x030C0000
    P("owner_cstack", FRAME_OWNED_BY_CSTACK);
#else
    NONE("owner_cstack");
#endif
#if PY_VERSION_HEX >= 0x030B0000
    P("owner_generator", FRAME_OWNED_BY_GENERATOR);
#else
    NONE("owner_generator");
#endif
    P("runtime_size", sizeof(_PyRuntimeState));
    P("rt_interpreters_head", offsetof(_PyRuntimeState, interpreters.head));
    P("rt_interpreters_main", offsetof(_PyRuntimeState, interpreters.main));
    P("rt_main_thread", offsetof(_PyRuntimeState, main_thread));
#if PY_VERSION_HEX < 0x030C0000
    P("rt_gil", offsetof(_PyRuntimeState, ceval.gil));
    P("rt_tstate_current", offsetof(_PyRuntimeState, gilstate.tstate_current));
#else
    NONE("rt_gil");
    NONE("rt_tstate_current");
#endif

    P("interp_next", offsetof(PyInterpreterState, next));
#if PY_VERSION_HEX < 0x030B0000
    P("interp_threads_head", offsetof(PyInterpreterState, tstate_head));
#else
    P("interp_threads_head", offsetof(PyInterpreterState, threads.head));
#endif
#if PY_VERSION_HEX >= 0x030C0000
    P("interp_ceval_gil", offsetof(PyInterpreterState, ceval.gil));
#else
    NONE("interp_ceval_gil");
#endif

    P("gil_size", sizeof(struct _gil_runtime_state));
    P("gil_interval", offsetof(struct _gil_runtime_state, interval));
    P("gil_last_holder", offsetof(struct _gil_runtime_state, last_holder));
    P("gil_locked", offsetof(struct _gil_runtime_state, locked));
    P("gil_switch_number", offsetof(struct _gil_runtime_state, switch_number));
    P("gil_cond", offsetof(struct _gil_runtime_state, cond));
    P("gil_mutex", offsetof(struct _gil_runtime_state, mutex));
    P("gil_switch_cond", offsetof(struct _gil_runtime_state, switch_cond));
    P("gil_switch_mutex", offsetof(struct _gil_runtime_state, switch_mutex));
#ifdef Py_GIL_DISABLED
    P("gil_enabled", offsetof(struct _gil_runtime_state, enabled));
#else
    NONE("gil_enabled");
#endif

    P("ts_next", offsetof(PyThreadState, next));
    P("ts_interp", offsetof(PyThreadState, interp));
    P("ts_thread_id", offsetof(PyThreadState, thread_id));
#if PY_VERSION_HEX < 0x030B0000
    P("ts_frame", offsetof(PyThreadState, frame));
    NONE("ts_native_thread_id");
#else
    NONE("ts_frame");
    P("ts_native_thread_id", offsetof(PyThreadState, native_thread_id));
#endif
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
    P("ts_cframe", offsetof(PyThreadState, cframe));
    P("cframe_current_frame", offsetof(_PyCFrame, current_frame));
#else
    NONE("ts_cframe");
    NONE("cframe_current_frame");
#endif
#if PY_VERSION_HEX >= 0x030D0000
    P("ts_current_frame", offsetof(PyThreadState, current_frame));
    P("ts_state", offsetof(PyThreadState, state));
#else
    NONE("ts_current_frame");
    NONE("ts_state");
#endif

#if PY_VERSION_HEX < 0x030B0000
    P("frameobj_back", offsetof(PyFrameObject, f_back));
    P("frameobj_code", offsetof(PyFrameObject, f_code));
    P("frameobj_lasti", offsetof(PyFrameObject, f_lasti));
    NONE("iframe_code");
    NONE("iframe_previous");
    NONE("iframe_instr");
    NONE("iframe_owner");
#else
    NONE("frameobj_back");
    NONE("frameobj_code");
    NONE("frameobj_lasti");
#if PY_VERSION_HEX >= 0x030D0000
    P("iframe_code", offsetof(_PyInterpreterFrame, f_executable));
    P("iframe_instr", offsetof(_PyInterpreterFrame, instr_ptr));
#else
    P("iframe_code", offsetof(_PyInterpreterFrame, f_code));
    P("iframe_instr", offsetof(_PyInterpreterFrame, prev_instr));
#endif
    P("iframe_previous", offsetof(_PyInterpreterFrame, previous));
    P("iframe_owner", offsetof(_PyInterpreterFrame, owner));
#endif

    /* 3.14t: each thread runs its own copy of a code object's bytecode
     * (thread-local bytecode); a frame's instr_ptr points into copy number
     * tlbc_index of the code's co_tlbc array (copy 0 is co_code_adaptive). */
#if defined(Py_GIL_DISABLED) && PY_VERSION_HEX >= 0x030E0000
    P("iframe_tlbc_index", offsetof(_PyInterpreterFrame, tlbc_index));
    P("code_tlbc", offsetof(PyCodeObject, co_tlbc));
#else
    NONE("iframe_tlbc_index");
    NONE("code_tlbc");
#endif

    P("code_filename", offsetof(PyCodeObject, co_filename));
    P("code_name", offsetof(PyCodeObject, co_name));
    P("code_firstlineno", offsetof(PyCodeObject, co_firstlineno));
    /* co_flags: CO_COROUTINE and friends tell a task's coroutine from a
     * plain callback (the flag values are part of the stable API) */
    P("code_flags", offsetof(PyCodeObject, co_flags));
#if PY_VERSION_HEX < 0x030A0000
    P("code_linetable", offsetof(PyCodeObject, co_lnotab));
#else
    P("code_linetable", offsetof(PyCodeObject, co_linetable));
#endif
#if PY_VERSION_HEX >= 0x030B0000
    P("code_qualname", offsetof(PyCodeObject, co_qualname));
    P("code_code_adaptive", offsetof(PyCodeObject, co_code_adaptive));
    P("code_firsttraceable", offsetof(PyCodeObject, _co_firsttraceable));
#else
    NONE("code_qualname");
    NONE("code_code_adaptive");
    NONE("code_firsttraceable");
#endif

    P("obj_type", offsetof(PyObject, ob_type));
    P("type_name", offsetof(PyTypeObject, tp_name));
    P("bytes_size", offsetof(PyVarObject, ob_size));
    P("bytes_data", offsetof(PyBytesObject, ob_sval));
    P("str_length", offsetof(PyASCIIObject, length));
    P("str_state", offsetof(PyASCIIObject, state));
    P("str_ascii_data", sizeof(PyASCIIObject));
    P("str_compact_data", sizeof(PyCompactUnicodeObject));

    /* Thread names: threading._active (a dict of int ident -> Thread) in
     * sys.modules, and each Thread's instance attributes. */
#if PY_VERSION_HEX >= 0x030C0000
    P("interp_modules", offsetof(PyInterpreterState, imports.modules));
#else
    P("interp_modules", offsetof(PyInterpreterState, modules));
#endif
#if PY_VERSION_HEX >= 0x030A0000
    P("module_dict", offsetof(PyModuleObject, md_dict));
#else
    /* Objects/moduleobject.c (not installed): PyObject_HEAD, then md_dict. */
    P("module_dict", sizeof(PyObject));
#endif
    P("dict_keys", offsetof(PyDictObject, ma_keys));
    P("dict_values", offsetof(PyDictObject, ma_values));
#if PY_VERSION_HEX >= 0x030B0000
    NONE("dk_size");
    P("dk_log2_size", offsetof(PyDictKeysObject, dk_log2_size));
    P("dk_log2_index_bytes", offsetof(PyDictKeysObject, dk_log2_index_bytes));
    P("dk_kind", offsetof(PyDictKeysObject, dk_kind));
    P("dk_nentries", offsetof(PyDictKeysObject, dk_nentries));
    P("dk_indices", offsetof(PyDictKeysObject, dk_indices));
    P("dict_entry_size", sizeof(PyDictKeyEntry));
    P("dict_unicode_entry_size", sizeof(PyDictUnicodeEntry));
#else
    /* Objects/dict-common.h (not installed): Py_ssize_t dk_refcnt, dk_size;
     * dict_lookup_func dk_lookup; Py_ssize_t dk_usable, dk_nentries; char
     * dk_indices[]; entries {Py_hash_t me_hash; PyObject *me_key, *me_value}. */
    P("dk_size", sizeof(Py_ssize_t));
    NONE("dk_log2_size");
    NONE("dk_log2_index_bytes");
    NONE("dk_kind");
    P("dk_nentries", 4 * sizeof(Py_ssize_t));
    P("dk_indices", 5 * sizeof(Py_ssize_t));
    P("dict_entry_size", sizeof(Py_hash_t) + 2 * sizeof(PyObject *));
    NONE("dict_unicode_entry_size");
#endif
#if PY_VERSION_HEX >= 0x030D0000
    P("dict_values_values", offsetof(PyDictValues, values));
    P("dict_values_valid", offsetof(PyDictValues, valid));
#else
    P("dict_values_values", 0); /* <=3.10 PyObject **; 3.11/3.12 values[] first */
    NONE("dict_values_valid");
#endif
    P("type_flags", offsetof(PyTypeObject, tp_flags));
    P("type_dictoffset", offsetof(PyTypeObject, tp_dictoffset));
    P("type_basicsize", offsetof(PyTypeObject, tp_basicsize));
    P("heap_cached_keys", offsetof(PyHeapTypeObject, ht_cached_keys));
    /* Where an instance's attributes live: 0 at tp_dictoffset (<=3.10);
     * 1 a managed dict or, when none, values beside it (3.11); 2 one
     * tagged dict-or-values word (3.12); 3 a managed dict or inline
     * values after the object, valid while not materialised (3.13+). */
#if PY_VERSION_HEX >= 0x030D0000
    P("dict_model", 3);
    P("managed_dict", MANAGED_DICT_OFFSET);
    NONE("managed_values");
    P("flag_inline_values", Py_TPFLAGS_INLINE_VALUES);
#elif PY_VERSION_HEX >= 0x030C0000
    P("dict_model", 2);
    P("managed_dict", -3 * (long)sizeof(PyObject *)); /* _PyObject_DictOrValuesPointer */
    NONE("managed_values");
    NONE("flag_inline_values");
#elif PY_VERSION_HEX >= 0x030B0000
    P("dict_model", 1);
    P("managed_dict", MANAGED_DICT_OFFSET);
    P("managed_values", -4 * (long)sizeof(PyObject *)); /* _PyObject_ValuesPointer */
    NONE("flag_inline_values");
#else
    P("dict_model", 0);
    NONE("managed_dict");
    NONE("managed_values");
    NONE("flag_inline_values");
#endif
#ifdef Py_TPFLAGS_MANAGED_DICT
    P("flag_managed_dict", Py_TPFLAGS_MANAGED_DICT);
#else
    NONE("flag_managed_dict");
#endif
    /* int: <=3.11 ob_size is the signed digit count; 3.12+ lv_tag holds
     * the count above _PyLong_NON_SIZE_BITS and the sign below. */
#if PY_VERSION_HEX >= 0x030C0000
    P("long_model", 1);
    P("long_size", offsetof(PyLongObject, long_value.lv_tag));
    P("long_digits", offsetof(PyLongObject, long_value.ob_digit));
#else
    P("long_model", 0);
    P("long_size", offsetof(PyVarObject, ob_size));
    P("long_digits", offsetof(PyLongObject, ob_digit));
#endif
    P("long_shift", PyLong_SHIFT);
    /* set (a WeakSet's data: asyncio's task registry until 3.13) and the
     * weak references in it */
    P("set_used", offsetof(PySetObject, used));
    P("set_mask", offsetof(PySetObject, mask));
    P("set_table", offsetof(PySetObject, table));
    P("set_entry_size", sizeof(setentry));
    P("weakref_object", offsetof(PyWeakReference, wr_object));
    /* lists and tuples (a gather's children, a future's callbacks) and
     * bound methods (a TaskGroup's done callback on its tasks) */
    P("list_items", offsetof(PyListObject, ob_item));
    P("var_size", offsetof(PyVarObject, ob_size));
    P("tuple_items", offsetof(PyTupleObject, ob_item));
    P("method_self", offsetof(PyMethodObject, im_self));
    P("method_func", offsetof(PyMethodObject, im_func));
    P("func_code", offsetof(PyFunctionObject, func_code));
    /* an event loop's timers: a TimerHandle's deadline (a float) and its
     * __slots__, found through the member descriptors in its class's
     * dict and its base class's */
    P("float_value", offsetof(PyFloatObject, ob_fval));
    P("type_dict", offsetof(PyTypeObject, tp_dict));
    P("type_base", offsetof(PyTypeObject, tp_base));
    P("memberdescr_member", offsetof(PyMemberDescrObject, d_member));
    P("memberdef_offset", offsetof(PyMemberDef, offset));
    /* a frame's first local (an event loop method's self) */
#if PY_VERSION_HEX < 0x030B0000
    P("frameobj_localsplus", offsetof(PyFrameObject, f_localsplus));
#else
    NONE("frameobj_localsplus");
#endif

    /* A suspended coroutine (an asyncio task's chain of awaits): its frame
     * and what it awaits, the top of its value stack when suspended in a
     * `yield from`/`await`. How a version tells that (gen_yf_model):
     * 0: the next instruction after f_lasti is YIELD_FROM (3.8-3.10);
     * 1: the unit after prev_instr is RESUME with oparg >= 2 (3.11, 3.12);
     * 2: gi_frame_state is FRAME_SUSPENDED_YIELD_FROM (3.13+). */
#if PY_VERSION_HEX < 0x030B0000
    P("gen_yf_model", 0);
    P("gen_frame", offsetof(PyGenObject, gi_frame));
    NONE("gen_iframe");
    NONE("gen_frame_state");
    P("op_yield_from", YIELD_FROM);
    NONE("op_resume");
    NONE("op_resume_alt");
    NONE("gen_state_yf_plus128");
    NONE("gen_state_executing_plus128");
    P("code_code", offsetof(PyCodeObject, co_code));
    P("frameobj_valuestack", offsetof(PyFrameObject, f_valuestack));
#if PY_VERSION_HEX < 0x030A0000
    P("frameobj_stacktop", offsetof(PyFrameObject, f_stacktop));
    NONE("frameobj_stackdepth");
#else
    NONE("frameobj_stacktop");
    P("frameobj_stackdepth", offsetof(PyFrameObject, f_stackdepth));
#endif
    NONE("iframe_stacktop");
    NONE("iframe_stackpointer");
    NONE("iframe_localsplus");
#else
    P("gen_yf_model", PY_VERSION_HEX < 0x030D0000 ? 1 : 2);
    NONE("gen_frame");
    P("gen_iframe", offsetof(PyGenObject, gi_iframe));
    P("gen_frame_state", offsetof(PyGenObject, gi_frame_state));
    NONE("op_yield_from");
    /* frame states are negative while suspended: stored +128 (-1 is "absent") */
    P("gen_state_executing_plus128", FRAME_EXECUTING + 128);
#if PY_VERSION_HEX < 0x030D0000
    /* and the other opcode a RESUME may have become: 3.11 quickens it,
     * 3.12 instruments it */
    P("op_resume", RESUME);
#if PY_VERSION_HEX >= 0x030C0000
    P("op_resume_alt", INSTRUMENTED_RESUME);
#else
    P("op_resume_alt", RESUME_QUICK);
#endif
    NONE("gen_state_yf_plus128");
#else
    NONE("op_resume");
    NONE("op_resume_alt");
    P("gen_state_yf_plus128", FRAME_SUSPENDED_YIELD_FROM + 128);
#endif
    NONE("code_code");
    NONE("frameobj_valuestack");
    NONE("frameobj_stacktop");
    NONE("frameobj_stackdepth");
#if PY_VERSION_HEX < 0x030E0000
    P("iframe_stacktop", offsetof(_PyInterpreterFrame, stacktop));
    NONE("iframe_stackpointer");
#else
    NONE("iframe_stacktop");
    P("iframe_stackpointer", offsetof(_PyInterpreterFrame, stackpointer));
#endif
    P("iframe_localsplus", offsetof(_PyInterpreterFrame, localsplus));
#endif
    /* How deep in the value stack of a frame suspended in an await the
     * awaited object sits: on top, until 3.15 put a NULL above it
     * (_SEND_GEN_FRAME's null operand; _PyFrame_StackPeek(frame, 2) in
     * genobject.c) */
#if PY_VERSION_HEX >= 0x030F0000
    P("gen_yf_depth", 2);
#else
    P("gen_yf_depth", 1);
#endif

#if PY_VERSION_HEX >= 0x030D0000
    /* Where each value sits inside _Py_DebugOffsets, so that the process's
     * own table can be read and preferred over the one compiled here. */
    P("dbg_rt_interpreters_head", offsetof(_Py_DebugOffsets, runtime_state.interpreters_head));
    P("dbg_interp_next", offsetof(_Py_DebugOffsets, interpreter_state.next));
    P("dbg_interp_threads_head", offsetof(_Py_DebugOffsets, interpreter_state.threads_head));
    P("dbg_interp_ceval_gil", offsetof(_Py_DebugOffsets, interpreter_state.ceval_gil));
    P("dbg_ts_next", offsetof(_Py_DebugOffsets, thread_state.next));
    P("dbg_ts_interp", offsetof(_Py_DebugOffsets, thread_state.interp));
    P("dbg_ts_current_frame", offsetof(_Py_DebugOffsets, thread_state.current_frame));
    P("dbg_ts_thread_id", offsetof(_Py_DebugOffsets, thread_state.thread_id));
    P("dbg_ts_native_thread_id", offsetof(_Py_DebugOffsets, thread_state.native_thread_id));
    P("dbg_iframe_previous", offsetof(_Py_DebugOffsets, interpreter_frame.previous));
    P("dbg_iframe_code", offsetof(_Py_DebugOffsets, interpreter_frame.executable));
    P("dbg_iframe_instr", offsetof(_Py_DebugOffsets, interpreter_frame.instr_ptr));
    P("dbg_iframe_owner", offsetof(_Py_DebugOffsets, interpreter_frame.owner));
    P("dbg_code_filename", offsetof(_Py_DebugOffsets, code_object.filename));
    P("dbg_code_name", offsetof(_Py_DebugOffsets, code_object.name));
    P("dbg_code_qualname", offsetof(_Py_DebugOffsets, code_object.qualname));
    P("dbg_code_linetable", offsetof(_Py_DebugOffsets, code_object.linetable));
    P("dbg_code_firstlineno", offsetof(_Py_DebugOffsets, code_object.firstlineno));
    P("dbg_code_code_adaptive", offsetof(_Py_DebugOffsets, code_object.co_code_adaptive));
    P("dbg_obj_type", offsetof(_Py_DebugOffsets, pyobject.ob_type));
    P("dbg_type_name", offsetof(_Py_DebugOffsets, type_object.tp_name));
    P("dbg_bytes_size", offsetof(_Py_DebugOffsets, bytes_object.ob_size));
    P("dbg_bytes_data", offsetof(_Py_DebugOffsets, bytes_object.ob_sval));
    P("dbg_str_length", offsetof(_Py_DebugOffsets, unicode_object.length));
    P("dbg_str_state", offsetof(_Py_DebugOffsets, unicode_object.state));
    P("dbg_str_ascii_data", offsetof(_Py_DebugOffsets, unicode_object.asciiobject_size));
#if defined(Py_GIL_DISABLED) && PY_VERSION_HEX >= 0x030E0000
    P("dbg_iframe_tlbc_index", offsetof(_Py_DebugOffsets, interpreter_frame.tlbc_index));
    P("dbg_code_tlbc", offsetof(_Py_DebugOffsets, code_object.co_tlbc));
#endif
    /* What a version without a generated table is read with (see
     * python/debug_offsets.h): each section's size, to bound its offsets,
     * and the interpreter's embedded GIL. */
    P("dbg_sec_runtime", offsetof(_Py_DebugOffsets, runtime_state.size));
    P("dbg_sec_interp", offsetof(_Py_DebugOffsets, interpreter_state.size));
    P("dbg_sec_tstate", offsetof(_Py_DebugOffsets, thread_state.size));
    P("dbg_sec_iframe", offsetof(_Py_DebugOffsets, interpreter_frame.size));
    P("dbg_sec_code", offsetof(_Py_DebugOffsets, code_object.size));
    P("dbg_sec_object", offsetof(_Py_DebugOffsets, pyobject.size));
    P("dbg_sec_type", offsetof(_Py_DebugOffsets, type_object.size));
    P("dbg_sec_bytes", offsetof(_Py_DebugOffsets, bytes_object.size));
    P("dbg_sec_str", offsetof(_Py_DebugOffsets, unicode_object.size));
    P("dbg_interp_gil_state", offsetof(_Py_DebugOffsets, interpreter_state.gil_runtime_state));
    P("dbg_interp_gil_locked", offsetof(_Py_DebugOffsets, interpreter_state.gil_runtime_state_locked));
    P("dbg_interp_gil_holder", offsetof(_Py_DebugOffsets, interpreter_state.gil_runtime_state_holder));
    P("dbg_interp_gil_enabled", offsetof(_Py_DebugOffsets, interpreter_state.gil_runtime_state_enabled));
#if PY_VERSION_HEX >= 0x030E0000
    P("dbg_interp_code_generation", offsetof(_Py_DebugOffsets, interpreter_state.code_object_generation));
#endif
#if PY_VERSION_HEX >= 0x030F0000
    P("dbg_str_compact_data", offsetof(_Py_DebugOffsets, unicode_object.compactunicodeobject_size));
#endif
    P("dbg_size", sizeof(_Py_DebugOffsets));
#endif
    return 0;
}
