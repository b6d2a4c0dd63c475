/* 3.14t thread-local bytecode: a frame's instr_ptr points into its thread's
 * copy of the code (co_tlbc->entries[frame->tlbc_index]), not into
 * co_code_adaptive. Objects laid out by the generated 3.14t table in this
 * process's memory, read back through the remote reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "python/pylayout.h"
#include "python/pyobj.h"
#include "python/pyrt.h"
#include "python/stackwalk.h"

#define FIRSTLINE 10
#define UNITS 8 /* code units: 0-3 on line 10, 4-7 on line 11 */

struct world {
    struct pyrt rt;
    struct pyobj_cache cache;
    _Alignas(16) uint8_t code_type[64], str_type[64];
    _Alignas(16) uint8_t filename[128], name[128], linetable[128];
    _Alignas(16) uint8_t code[1024];
    _Alignas(16) uint64_t tlbc[1 + 4]; /* _PyCodeArray: size, entries[] */
    _Alignas(16) uint8_t copy2[2 * UNITS], other[2 * UNITS];
    _Alignas(16) uint8_t frames[2][256];
};

static void put_u64(uint8_t *obj, int32_t off, uint64_t v)
{
    memcpy(obj + off, &v, 8);
}

static void put_i32(uint8_t *obj, int32_t off, int32_t v)
{
    memcpy(obj + off, &v, 4);
}

static void make_str(const struct py_layout *L, uint8_t *obj, const uint8_t *type, const char *s)
{
    put_u64(obj, L->obj_type, (uint64_t)(uintptr_t)type);
    put_u64(obj, L->str_length, strlen(s));
    put_i32(obj, L->str_state, (1 << 2) | (1 << 5) | (1 << 6)); /* 1-byte, compact, ASCII */
    memcpy(obj + L->str_ascii_data, s, strlen(s));
}

static uint64_t addr(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static int setup(void **state)
{
    const struct py_layout *L = py_layout_for(3, 14, true);
    assert_non_null(L);
    assert_true(L->code_tlbc >= 0 && L->iframe_tlbc_index >= 0);
    struct world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->rt.layout = *L;
    w->rt.free_threaded = true;
    w->rt.code_type = addr(w->code_type);
    w->rt.unicode_type = addr(w->str_type);
    remote_init(&w->rt.mem, getpid());
    pyobj_cache_init(&w->cache);
    make_str(L, w->filename, w->str_type, "app.py");
    make_str(L, w->name, w->str_type, "work");
    /* Location table: two entries of 4 code units without columns (code
     * 13), line delta 0 then +1 (zigzag varint 2). */
    static const uint8_t table[] = {0x80 | 13 << 3 | 3, 0x00, 0x80 | 13 << 3 | 3, 0x02};
    put_u64(w->linetable, L->bytes_size, sizeof table);
    memcpy(w->linetable + L->bytes_data, table, sizeof table);
    put_u64(w->code, L->obj_type, addr(w->code_type));
    put_u64(w->code, L->bytes_size, UNITS);
    put_u64(w->code, L->code_filename, addr(w->filename));
    put_u64(w->code, L->code_name, addr(w->name));
    put_u64(w->code, L->code_qualname, addr(w->name));
    put_u64(w->code, L->code_linetable, addr(w->linetable));
    put_i32(w->code, L->code_firstlineno, FIRSTLINE);
    put_i32(w->code, L->code_firsttraceable, 0);
    put_u64(w->code, L->code_tlbc, addr(w->tlbc));
    assert_true((size_t)L->code_code_adaptive + 2 * UNITS <= sizeof w->code);
    /* Copy 0 is the code's own bytecode, copy 1 not made yet, copy 2 a
     * thread's own. */
    w->tlbc[0] = 3;
    w->tlbc[1] = addr(w->code + L->code_code_adaptive);
    w->tlbc[2] = 0;
    w->tlbc[3] = addr(w->copy2);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    pyobj_cache_free(&w->cache);
    free(w);
    return 0;
}

static int line_of(struct world *w, int32_t tlbc, uint64_t pos)
{
    struct raw_frame raw = {.addr = 1, .code = addr(w->code), .pos = pos, .tlbc = tlbc};
    struct py_frame out[1];
    bool partial = false;
    int n = stackwalk_resolve(&w->rt, &w->cache, &raw, 1, out, 1, &partial);
    assert_int_equal(n, 1);
    assert_false(partial);
    assert_string_equal(out[0].code->name, "work");
    return out[0].line;
}

static void test_thread_copy_gives_the_line(void **state)
{
    struct world *w = *state;
    uint64_t main_copy = addr(w->code + w->rt.layout.code_code_adaptive);
    assert_int_equal(line_of(w, 0, main_copy + 2 * 1), FIRSTLINE);
    assert_int_equal(line_of(w, 0, main_copy + 2 * 6), FIRSTLINE + 1);
    assert_int_equal(line_of(w, 2, addr(w->copy2) + 2 * 2), FIRSTLINE);
    assert_int_equal(line_of(w, 2, addr(w->copy2) + 2 * 5), FIRSTLINE + 1);
    struct code_info *ci = pyobj_code(&w->rt, &w->cache, addr(w->code));
    assert_non_null(ci);
    assert_int_equal(ci->ncodeunits, UNITS);
    assert_int_equal(pyobj_code_bytecode(&w->rt, ci, 2, addr(w->copy2) + 4), addr(w->copy2));
    /* Read before the frame moved to its thread's copy: still the main one. */
    assert_int_equal(pyobj_code_bytecode(&w->rt, ci, 2, main_copy + 4), main_copy);
}

static void test_missing_or_stale_copy(void **state)
{
    struct world *w = *state;
    struct code_info *ci = pyobj_code(&w->rt, &w->cache, addr(w->code));
    assert_non_null(ci);
    /* No copy 1 yet, no copy 3 at all, an address outside copy 2. */
    assert_int_equal(pyobj_code_bytecode(&w->rt, ci, 1, addr(w->copy2)), 0);
    assert_int_equal(pyobj_code_bytecode(&w->rt, ci, 3, addr(w->copy2)), 0);
    assert_int_equal(pyobj_code_bytecode(&w->rt, ci, 2, addr(w->other)), 0);
    /* Copy 2 remembered, then freed and made again elsewhere (its thread
     * exited, a new one got index 2): found again, not the old address. */
    assert_int_equal(pyobj_code_bytecode(&w->rt, ci, 2, addr(w->copy2)), addr(w->copy2));
    w->tlbc[3] = addr(w->other);
    assert_int_equal(pyobj_code_bytecode(&w->rt, ci, 2, addr(w->other) + 6), addr(w->other));
    assert_int_equal(line_of(w, 2, addr(w->other) + 2 * 7), FIRSTLINE + 1);
    /* An unreadable copy: the frame is still there, at the first line. */
    assert_int_equal(line_of(w, 1, addr(w->copy2) + 2 * 5), FIRSTLINE);
}

/* A frame's f_executable carries the free-threaded build's deferred tag
 * (bit 0) and its tlbc_index is read with it. */
static void test_walk_reads_tag_and_index(void **state)
{
    struct world *w = *state;
    const struct py_layout *L = &w->rt.layout;
    uint8_t *inner = w->frames[0], *outer = w->frames[1];
    uint64_t main_copy = addr(w->code + L->code_code_adaptive);
    put_u64(inner, L->iframe_code, addr(w->code) | 1);
    put_u64(inner, L->iframe_instr, addr(w->copy2) + 2 * 4);
    put_u64(inner, L->iframe_previous, addr(outer));
    put_i32(inner, L->iframe_tlbc_index, 2);
    put_u64(outer, L->iframe_code, addr(w->code));
    put_u64(outer, L->iframe_instr, main_copy + 2 * 3);
    put_u64(outer, L->iframe_previous, 0);
    put_i32(outer, L->iframe_tlbc_index, 0);
    struct stack_walk walk = {.root = addr(inner)};
    stackwalk_run(&w->rt, &walk, 1);
    assert_false(walk.partial);
    assert_int_equal(walk.nframes, 2);
    assert_int_equal(walk.frames[0].code, addr(w->code));
    assert_int_equal(walk.frames[0].tlbc, 2);
    assert_int_equal(walk.frames[1].tlbc, 0);
    struct py_frame out[2];
    bool partial = false;
    int n = stackwalk_resolve(&w->rt, &w->cache, walk.frames, walk.nframes, out, 2, &partial);
    free(walk.frames);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].line, FIRSTLINE + 1);
    assert_int_equal(out[1].line, FIRSTLINE);
}

int run_tlbc_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_thread_copy_gives_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_or_stale_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walk_reads_tag_and_index, setup, teardown),
    };
    return cmocka_run_group_tests_name("3.14t thread-local bytecode", tests, NULL, NULL);
}
