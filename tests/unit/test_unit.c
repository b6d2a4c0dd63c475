/* C unit tests (cmocka). Line-table decoders are checked against fixtures
 * that each installed interpreter writes about its own code objects. */
#include <errno.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/addrmap.h"
#include "python/classify.h"
#include "util/grow.h"
#include "python/linetable.h"
#include "target/proc.h"
#include "python/pyrt.h"
#include "util/quantiles.h"

#define MAX_FIXTURES 32

int run_diagnose_tests(void);
int run_tlbc_tests(void);
int run_watch_record_tests(void);
int run_serve_export_tests(void);
int run_checks_tests(void);
int run_blame_tests(void);
int run_loop_timers_tests(void);

static char fixture_paths[MAX_FIXTURES][1024];
static char fixture_names[MAX_FIXTURES][300];

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    while (s[0] && s[1] && n < cap) {
        unsigned v;
        sscanf(s, "%2x", &v);
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static void test_linetable_fixture(void **state)
{
    const char *path = *state;
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    int format = -1, firstlineno = 0;
    char version[32] = "";
    static uint8_t table[1 << 20];
    size_t tlen = 0;
    long checked = 0, codes = 0, mismatches = 0;
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == 'V') {
            assert_int_equal(sscanf(line, "V %31s %d", version, &format), 2);
        } else if (line[0] == 'C') {
            char *hex = strchr(line + 2, ' ');
            assert_non_null(hex);
            firstlineno = atoi(line + 2);
            tlen = unhex(hex + 1, table, sizeof table);
            codes++;
        } else if (line[0] == 'E') {
            char *p = line + 1, *end;
            for (;;) {
                long off = strtol(p, &end, 10);
                if (end == p)
                    break;
                p = end;
                long want = strtol(p, &end, 10);
                p = end;
                int got = linetable_line(format, table, tlen, firstlineno, off);
                if (got != want && mismatches++ < 5)
                    print_error("%s: offset %ld: decoded line %d, interpreter says %ld\n", version,
                                off, got, want);
                checked++;
            }
        }
    }
    free(line);
    fclose(f);
    print_message("%s (format %d): %ld offsets in %ld code objects\n", version, format, checked,
                  codes);
    assert_true(codes > 1000);
    assert_int_equal(mismatches, 0);
}

static void test_linetable_negative_offset_is_first_line(void **state)
{
    (void)state;
    uint8_t t[] = {0x80};
    assert_int_equal(linetable_line(2, t, 1, 42, -1), 42);
    assert_int_equal(linetable_line(0, t, 0, 7, -1), 7);
}

static void test_linetable_garbage_is_bounded(void **state)
{
    (void)state;
    uint8_t t[64];
    for (int i = 0; i < 64; i++)
        t[i] = (uint8_t)(i * 37 + 11);
    for (int fmt = 0; fmt < 3; fmt++)
        for (long off = 0; off < 200; off++)
            (void)linetable_line(fmt, t, sizeof t, 1, off); /* must not crash */
    uint8_t varint_run[8] = {0xE8, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f};
    assert_int_equal(linetable_line(2, varint_run, sizeof varint_run, 1, 0), -1);
}

static void test_parse_syscall(void **state)
{
    (void)state;
    struct task_info t;
    proc_parse_syscall("running\n", &t);
    assert_int_equal(t.syscall_nr, SYSCALL_NONE);
    proc_parse_syscall("202 0x55d0c4b0 0x89 0x0 0x7ffd 0x0 0xffffffff 0x7ffd1 0x7f12\n", &t);
    assert_int_equal(t.syscall_nr, 202);
    assert_int_equal(t.args[0], 0x55d0c4b0);
    assert_int_equal(t.args[1], 0x89);
    assert_int_equal(t.args[5], 0xffffffff);
    assert_int_equal(t.sp, 0x7ffd1);
    assert_int_equal(t.pc, 0x7f12);
    proc_parse_syscall("-1 0x7ffd 0x7f12\n", &t);
    assert_int_equal(t.syscall_nr, SYSCALL_UNKNOWN);
    assert_int_equal(t.sp, 0x7ffd);
}

/* Status lines by key, for the process and a thread: whole keys only. */
static void test_status_value(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(proc_status_value(getpid(), 0, "VmRSS", &v), 0);
    assert_true(v > 0);
    assert_int_equal(proc_status_value(getpid(), (pid_t)syscall(SYS_gettid),
                                       "nonvoluntary_ctxt_switches", &v), 0);
    /* "Vm" is the start of several keys but no key of its own. */
    assert_int_equal(proc_status_value(getpid(), 0, "Vm", &v), -EINVAL);
    assert_int_equal(proc_status_value(getpid(), 0, "NoSuchKey", &v), -EINVAL);
    assert_true(proc_status_value(0x7ffffff0, 0, "VmRSS", &v) < 0);
}

static void test_parse_stat(void **state)
{
    (void)state;
    struct proc_stat st;
    /* A comm with spaces, parentheses and a control character; fields
     * 14, 15 (utime, stime) and 22 (start time) counted from the last ')'. */
    const char *line = "4242 (a) b\x1b(c)) S 1 4242 4242 0 -1 4194560 2 0 0 0 "
                       "17 23 0 0 20 0 3 0 987654 1000 100 18446744073709551615\n";
    assert_int_equal(proc_stat_parse(line, &st), 0);
    assert_string_equal(st.comm, "a) b?(c)");
    assert_int_equal(st.state, 'S');
    assert_int_equal(st.utime, 17);
    assert_int_equal(st.stime, 23);
    assert_int_equal(st.starttime, 987654);
    assert_int_equal(proc_stat_parse("4242 no parentheses S 1", &st), -EINVAL);
    assert_int_equal(proc_stat_parse("4242 (cut)", &st), -EINVAL);
    /* A line cut short: the fields it has, zeros for the rest. */
    assert_int_equal(proc_stat_parse("1 (x) R 0 1 1 0 -1 0 0 0 0 0 5", &st), 0);
    assert_int_equal(st.state, 'R');
    assert_int_equal(st.utime, 5);
    assert_int_equal(st.stime, 0);
    assert_int_equal(st.starttime, 0);
}

static struct task_info blocked(long nr, uint64_t a0, uint64_t a1)
{
    struct task_info t = {.tid = 1, .state = 'S', .syscall_nr = nr, .valid = true};
    t.args[0] = a0;
    t.args[1] = a1;
    return t;
}

static void test_classify(void **state)
{
    (void)state;
    const uint64_t gil = 0x1000;
    struct block_info b;
    struct task_info t = blocked(202, gil + 72, 0x89); /* gil->cond.__g_signals */
    classify_task(&t, gil, 208, &b);
    assert_int_equal(b.kind, BLOCK_GIL);
    t = blocked(202, gil + 208, 0x89); /* just past the GIL: someone else's */
    classify_task(&t, gil, 208, &b);
    assert_int_equal(b.kind, BLOCK_LOCK);
    assert_int_equal(b.wait_addr, gil + 208);
    t = blocked(23, 0, 0); /* select(0, NULL, NULL, NULL, &tv): time.sleep <= 3.10 */
    classify_task(&t, gil, 208, &b);
    assert_int_equal(b.kind, BLOCK_SLEEP);
    t = blocked(23, 5, 0);
    classify_task(&t, gil, 208, &b);
    assert_int_equal(b.kind, BLOCK_IO);
    t = blocked(7, 0x7fff0000, 0); /* poll with no fds */
    classify_task(&t, gil, 208, &b);
    assert_int_equal(b.kind, BLOCK_SLEEP);
    t = blocked(230, 1, 0);
    classify_task(&t, gil, 208, &b);
    assert_int_equal(b.kind, BLOCK_SLEEP);
    assert_string_equal(b.syscall, "clock_nanosleep");
    t = blocked(45, 3, 0);
    classify_task(&t, gil, 208, &b);
    assert_int_equal(b.kind, BLOCK_IO);
    t = blocked(SYSCALL_NONE, 0, 0);
    t.state = 'R';
    classify_task(&t, gil, 208, &b);
    assert_int_equal(b.kind, BLOCK_NONE);
    assert_null(block_kind_name(b.kind));
    t = blocked(9999, 0, 0);
    classify_task(&t, gil, 208, &b);
    assert_int_equal(b.kind, BLOCK_OTHER);
}

static void test_addrmap(void **state)
{
    (void)state;
    struct addrmap m;
    addrmap_init(&m);
    for (uint64_t k = 1; k <= 5000; k++)
        assert_true(addrmap_put(&m, k * 8, (void *)(uintptr_t)(k + 1)));
    for (uint64_t k = 1; k <= 5000; k++)
        assert_int_equal((uintptr_t)addrmap_get(&m, k * 8), k + 1);
    assert_null(addrmap_get(&m, 12345 * 8 + 1));
    assert_false(addrmap_put(&m, 0, NULL));
    addrmap_clear(&m);
    assert_true(addrmap_add_new(&m, 64));
    assert_false(addrmap_add_new(&m, 64));
    addrmap_free(&m);
}

static void test_parse_version(void **state)
{
    (void)state;
    assert_int_equal(pyrt_parse_version("3.12.1 (main, Jan  1 2024)"), 0x030C01F0);
    assert_int_equal(pyrt_parse_version("3.13.0rc2"), 0x030D00C2);
    assert_int_equal(pyrt_parse_version("3.8.0b4+"), 0x030800B4);
    assert_int_equal(pyrt_parse_version("2.7.18"), 0);
    assert_int_equal(pyrt_parse_version("garbage"), 0);
    char buf[32];
    pyrt_format_version(0x030D00C2, buf, sizeof buf);
    assert_string_equal(buf, "3.13.0rc2");
}

static void test_grow_for(void **state)
{
    (void)state;
    uint32_t *v = NULL;
    size_t cap = grow_for(&v, sizeof *v, 0, 0, 4);
    assert_int_equal(cap, 4);
    assert_non_null(v);
    for (uint32_t i = 0; i < 4; i++)
        v[i] = i;
    assert_int_equal(grow_for(&v, sizeof *v, 3, cap, 4), 4); /* room left: unchanged */
    cap = grow_for(&v, sizeof *v, 4, cap, 4);
    assert_int_equal(cap, 8);
    assert_int_equal(v[3], 3); /* contents kept */
    uint32_t *before = v;
    assert_int_equal(grow_for(&v, SIZE_MAX / 4, 8, 8, 4), 0); /* would overflow */
    assert_ptr_equal(v, before);
    free(v);
}

static void test_quantiles(void **state)
{
    (void)state;
    /* Nearest rank: of 100 values, p50 is the 50th and p99 the 99th. */
    assert_int_equal(nearest_rank_index(100, 0.50), 49);
    assert_int_equal(nearest_rank_index(100, 0.99), 98);
    assert_int_equal(nearest_rank_index(1, 0.99), 0);
    assert_int_equal(nearest_rank_index(3, 0.50), 1);
    double v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (double)(100 - i); /* unsorted on purpose */
    struct quantiles q = quantiles_of(v, 100);
    assert_true(q.p50 == 50.0 && q.p99 == 99.0 && q.max == 100.0);
    q = quantiles_of(v, 0);
    assert_true(q.p50 == 0 && q.p99 == 0 && q.max == 0);
    double one = 7.5;
    q = quantiles_of(&one, 1);
    assert_true(q.p50 == 7.5 && q.p99 == 7.5 && q.max == 7.5);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: unit_tests FIXTURE_DIR\n");
        return 2;
    }
    struct CMUnitTest tests[MAX_FIXTURES + 16];
    size_t n = 0;
    DIR *d = opendir(argv[1]);
    if (!d) {
        fprintf(stderr, "unit_tests: no fixture folder %s\n", argv[1]);
        return 2;
    }
    struct dirent *de;
    while ((de = readdir(d)) && n < MAX_FIXTURES) {
        if (!strstr(de->d_name, ".txt"))
            continue;
        snprintf(fixture_paths[n], sizeof fixture_paths[n], "%s/%s", argv[1], de->d_name);
        snprintf(fixture_names[n], sizeof fixture_names[n], "linetable %s", de->d_name);
        tests[n] = (struct CMUnitTest){fixture_names[n], test_linetable_fixture, NULL, NULL,
                                       fixture_paths[n]};
        n++;
    }
    closedir(d);
    if (n < 7) {
        fprintf(stderr, "unit_tests: expected 7 interpreter fixtures in %s, found %zu\n", argv[1],
                n);
        return 1;
    }
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_linetable_negative_offset_is_first_line),
        cmocka_unit_test(test_linetable_garbage_is_bounded),
        cmocka_unit_test(test_parse_syscall),
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_status_value),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_addrmap),
        cmocka_unit_test(test_grow_for),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_parse_version),
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        tests[n++] = fixed[i];
    int failed = _cmocka_run_group_tests("gilprobe", tests, n, NULL, NULL);
    return failed + run_diagnose_tests() + run_tlbc_tests() + run_watch_record_tests() +
           run_serve_export_tests() + run_checks_tests() + run_blame_tests() +
           run_loop_timers_tests();
}
