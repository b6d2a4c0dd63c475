/* --fail-on's per-thread checks, thread[SELECTOR].METRIC: parsing (each
 * bad selector a one-line usage error) and evaluation against hand-built
 * report documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "analysis/checks.h"

/* Four threads: the main one (never waited), one named by its creator,
 * one without a Python name (OS name only), one whose Python name is
 * not its OS name. eBPF measured thread 102 only. */
static const char *const REPORT =
    "{\"threads\": ["
    " {\"tid\": 101, \"name\": \"python3\", \"python_name\": \"MainThread\","
    "  \"gil_wait_pct\": 0, \"gil_held_pct\": 1, \"cpu_pct\": 2,"
    "  \"gil_wait_stretches\": {\"count\": 0, \"p99_ms\": null, \"max_ms\": null}},"
    " {\"tid\": 102, \"name\": \"quote-desk\", \"python_name\": \"quote-desk\","
    "  \"gil_wait_pct\": 40, \"gil_held_pct\": 20, \"cpu_pct\": null,"
    "  \"gil_wait_stretches\": {\"count\": 9, \"p99_ms\": 30, \"max_ms\": 35},"
    "  \"gil_wait_caused_ms\": 120},"
    " {\"tid\": 103, \"name\": \"crunch-0\", \"python_name\": null,"
    "  \"gil_wait_pct\": 70, \"gil_held_pct\": 25, \"cpu_pct\": 25,"
    "  \"gil_wait_stretches\": {\"count\": 5, \"p99_ms\": 12, \"max_ms\": 15}},"
    " {\"tid\": 104, \"name\": \"spin-1\", \"python_name\": \"Thread-2 (spin)\","
    "  \"gil_wait_pct\": 10, \"gil_held_pct\": 45, \"cpu_pct\": 44,"
    "  \"gil_wait_stretches\": {\"count\": 5, \"p99_ms\": 8, \"max_ms\": 9}}],"
    " \"gil_exact\": {\"held_pct\": 91, \"threads\": [{\"tid\": 102,"
    "  \"hold\": {\"p99_ms\": 4, \"max_ms\": 6}, \"wait\": {\"p99_ms\": 50, \"max_ms\": 61}}]}}";

/* In place: a compiled regex is not to be copied. */
static void parse(const char *text, struct check *c)
{
    char why[2600] = "";
    if (check_parse(text, c, why, sizeof why) != 0)
        fail_msg("%s: %s", text, why);
}

/* The check evaluated against `doc`: its outcome, its measured text in
 * measured. */
static enum check_outcome outcome(const char *text, const char *doc, char *measured, size_t sz)
{
    struct check c;
    parse(text, &c);
    json_object *report = json_tokener_parse(doc);
    assert_non_null(report);
    checks_evaluate(&c, 1, report);
    snprintf(measured, sz, "%s", c.measured);
    json_object_put(report);
    checks_free(&c, 1);
    return c.outcome;
}

static void expect(const char *text, const char *doc, enum check_outcome want, const char *measured)
{
    char got[256];
    enum check_outcome o = outcome(text, doc, got, sizeof got);
    if (o != want || strcmp(got, measured) != 0)
        fail_msg("%s: outcome %d, measured '%s'; want %d, '%s'", text, o, got, want, measured);
}

static void test_selectors_parse(void **state)
{
    (void)state;
    struct check c;
    parse("thread[12345].gil_wait_pct >= 30", &c);
    assert_int_equal(c.thread.by, CHECK_BY_TID);
    assert_int_equal(c.thread.tid, 12345);
    assert_int_equal(c.op, CHECK_GE);
    assert_true(c.value == 30);
    assert_string_equal(c.expr, "thread[12345].gil_wait_pct>=30");

    /* blanks inside the brackets are the name's own */
    parse(" thread [ Thread-1 (spin) ] . gil_held_pct < 50 ", &c);
    assert_int_equal(c.thread.by, CHECK_BY_NAME);
    assert_string_equal(c.thread.sel, "Thread-1 (spin)");
    assert_string_equal(c.expr, "thread[Thread-1 (spin)].gil_held_pct<50");

    /* a regex may hold brackets and '=': the selector ends at the last ']' */
    parse("thread[name ~= ^worker-[0-9]+$].gil_wait_p99_ms>20", &c);
    assert_int_equal(c.thread.by, CHECK_BY_REGEX);
    assert_string_equal(c.expr, "thread[name ~= ^worker-[0-9]+$].gil_wait_p99_ms>20");
    json_object *j = checks_json(&c, 1);
    json_object *metric;
    assert_true(json_object_object_get_ex(json_object_array_get_idx(j, 0), "metric", &metric));
    assert_string_equal(json_object_get_string(metric),
                        "thread[name ~= ^worker-[0-9]+$].gil_wait_p99_ms");
    json_object_put(j);
    checks_free(&c, 1);
    checks_free(&c, 1); /* twice: harmless */

    static const char *const METRICS[] = {
        "gil_wait_pct",    "gil_held_pct",    "lock_wait_pct",   "idle_wait_pct",
        "io_wait_pct",     "nogil_running_pct", "cpu_pct",       "gil_wait_p99_ms",
        "gil_wait_max_ms", "gil_hold_p99_ms", "gil_hold_max_ms", "gil_wait_caused_ms"};
    for (size_t i = 0; i < sizeof METRICS / sizeof METRICS[0]; i++) {
        char text[96];
        snprintf(text, sizeof text, "thread[quote-desk].%s!=1", METRICS[i]);
        parse(text, &c);
        assert_int_equal(c.thread.by, CHECK_BY_NAME);
    }
    /* the report-wide metrics are untouched */
    parse("thread.max_gil_wait_pct>30", &c);
    assert_int_equal(c.thread.by, CHECK_REPORT);
}

static void test_bad_selectors_are_one_line_usage_errors(void **state)
{
    (void)state;
    static const char *const BAD[][2] = {
        {"thread[].gil_wait_pct>1", "empty thread selector '[]'"},
        {"thread[  ].gil_wait_pct>1", "empty thread selector '[]'"},
        {"thread[].x>1", "empty thread selector '[]'"},
        {"thread[quote-desk.gil_wait_pct>1", "'thread[' is never closed with ']'"},
        {"thread[name~=(].gil_wait_pct>1",
         "'(' is not a POSIX extended regular expression: "},
        {"thread[name~=].gil_wait_pct>1", "name~= needs a regular expression"},
        {"thread[quote-desk].gil_wait>1", "unknown per-thread metric 'gil_wait'"},
        {"thread[quote-desk].>1", "unknown per-thread metric ''"},
        {"thread[quote-desk]>1", "'.METRIC OP VALUE' expected after ']'"},
        {"thread[quote-desk].gil_wait_pct", "OP VALUE expected after 'gil_wait_pct'"},
        {"thread[quote-desk].gil_wait_pct>", "OP VALUE expected after 'gil_wait_pct'"},
        {"thread[quote-desk].gil_wait_pct>lots", "'lots' is not a number"},
        {"thread[0].gil_wait_pct>1", "'0' is not a thread ID"},
        {"thread[99999999999].gil_wait_pct>1", "is not a thread ID"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        struct check c;
        char why[2600] = "";
        if (check_parse(BAD[i][0], &c, why, sizeof why) == 0)
            fail_msg("%s parsed", BAD[i][0]);
        if (!strstr(why, BAD[i][1]) || strchr(why, '\n'))
            fail_msg("%s: '%s' lacks '%s'", BAD[i][0], why, BAD[i][1]);
        /* every one names the form and the per-thread metrics */
        assert_non_null(strstr(why, "thread[TID|NAME|name~=REGEX].METRIC"));
        assert_non_null(strstr(why, "gil_wait_pct, gil_held_pct"));
        assert_non_null(strstr(why, "gil_wait_caused_ms"));
    }
    /* an unknown report metric's list shows the per-thread form too */
    struct check c;
    char why[2600] = "";
    assert_int_equal(check_parse("threads.bogus>1", &c, why, sizeof why), -1);
    assert_non_null(strstr(why, "thread[TID|NAME|name~=REGEX].METRIC with METRIC one of"));
}

static void test_selectors_pick_threads(void **state)
{
    (void)state;
    expect("thread[102].gil_wait_pct>=30", REPORT, CHECK_FAILED, "40 (thread 102 \"quote-desk\")");
    expect("thread[102].gil_wait_pct>=50", REPORT, CHECK_PASSED, "40 (thread 102 \"quote-desk\")");
    expect("thread[quote-desk].gil_held_pct<10", REPORT, CHECK_PASSED,
           "20 (thread 102 \"quote-desk\")");
    /* no Python name: the OS name */
    expect("thread[name~=^crunch].gil_wait_pct>50", REPORT, CHECK_FAILED,
           "70 (thread 103 \"crunch-0\")");
    expect("thread[crunch-0].gil_held_pct>=25", REPORT, CHECK_FAILED,
           "25 (thread 103 \"crunch-0\")");
    expect("thread[name~=^crunch-[0-9]$].gil_wait_pct>50", REPORT, CHECK_FAILED,
           "70 (thread 103 \"crunch-0\")");
    /* a Python name is what is matched, not the OS name behind it */
    expect("thread[Thread-2 (spin)].gil_held_pct<40", REPORT, CHECK_PASSED,
           "45 (thread 104 \"Thread-2 (spin)\")");
    expect("thread[name~=\\(spin\\)$].gil_held_pct>40", REPORT, CHECK_FAILED,
           "45 (thread 104 \"Thread-2 (spin)\")");
    expect("thread[name~=^spin].gil_held_pct>1", REPORT, CHECK_NOT_MEASURED,
           "not measured in this run: no thread matched the selector [name~=^spin]");
}

static void test_no_thread_matched_is_not_measured(void **state)
{
    (void)state;
    expect("thread[nosuchthread].gil_wait_pct>1", REPORT, CHECK_NOT_MEASURED,
           "not measured in this run: no thread matched the selector [nosuchthread]");
    expect("thread[4242].gil_wait_pct<1", REPORT, CHECK_NOT_MEASURED,
           "not measured in this run: no thread matched the selector [4242]");
    expect("thread[quote-desk].gil_wait_pct>1", "{\"threads\": []}", CHECK_NOT_MEASURED,
           "not measured in this run: no thread matched the selector [quote-desk]");
    expect("thread[quote-desk].gil_wait_pct>1", "{}", CHECK_NOT_MEASURED,
           "not measured in this run: no thread matched the selector [quote-desk]");
    /* matched, but this run has no such figure for it */
    expect("thread[quote-desk].cpu_pct>1", REPORT, CHECK_NOT_MEASURED,
           "not measured in this run for the 1 thread [quote-desk] matched");
    expect("thread[103].gil_wait_caused_ms>100", REPORT, CHECK_NOT_MEASURED,
           "not measured in this run for the 1 thread [103] matched");
    expect("thread[102].gil_wait_caused_ms>100", REPORT, CHECK_FAILED,
           "120 (thread 102 \"quote-desk\")");
}

static void test_any_matched_thread_decides(void **state)
{
    (void)state;
    /* > >=: the largest; < <=: the smallest */
    expect("thread[name~=.].gil_wait_pct>50", REPORT, CHECK_FAILED,
           "70 (thread 103 \"crunch-0\"; the highest of 4 threads)");
    expect("thread[name~=.].gil_wait_pct>=70.5", REPORT, CHECK_PASSED,
           "70 (thread 103 \"crunch-0\"; the highest of 4 threads)");
    expect("thread[name~=.].gil_held_pct<5", REPORT, CHECK_FAILED,
           "1 (thread 101 \"MainThread\"; the lowest of 4 threads)");
    expect("thread[name~=.].gil_held_pct<=0.5", REPORT, CHECK_PASSED,
           "1 (thread 101 \"MainThread\"; the lowest of 4 threads)");
    /* == !=: one that makes it true, else the first */
    expect("thread[name~=.].gil_wait_pct==10", REPORT, CHECK_FAILED,
           "10 (thread 104 \"Thread-2 (spin)\"; one of 4 threads)");
    expect("thread[name~=.].gil_wait_pct==11", REPORT, CHECK_PASSED,
           "0 (thread 101 \"MainThread\"; one of 4 threads)");
    expect("thread[name~=.].gil_wait_pct!=0", REPORT, CHECK_FAILED,
           "40 (thread 102 \"quote-desk\"; one of 4 threads)");
    /* threads without the figure are left out, the others decide */
    expect("thread[name~=.].cpu_pct>40", REPORT, CHECK_FAILED,
           "44 (thread 104 \"Thread-2 (spin)\"; the highest of 3 threads)");
}

static void test_exact_figures_first_then_sampled(void **state)
{
    (void)state;
    /* eBPF measured 102: its exact waits; the others: their wait stretches */
    expect("thread[quote-desk].gil_wait_p99_ms>20", REPORT, CHECK_FAILED,
           "50 (thread 102 \"quote-desk\", exact)");
    expect("thread[quote-desk].gil_wait_max_ms>60", REPORT, CHECK_FAILED,
           "61 (thread 102 \"quote-desk\", exact)");
    expect("thread[crunch-0].gil_wait_p99_ms>20", REPORT, CHECK_PASSED,
           "12 (thread 103 \"crunch-0\", sampled)");
    expect("thread[crunch-0].gil_wait_max_ms>=15", REPORT, CHECK_FAILED,
           "15 (thread 103 \"crunch-0\", sampled)");
    /* no wait stretch at all: 0, not "not measured" */
    expect("thread[MainThread].gil_wait_p99_ms>0", REPORT, CHECK_PASSED,
           "0 (thread 101 \"MainThread\", sampled)");
    expect("thread[name~=.].gil_wait_p99_ms>40", REPORT, CHECK_FAILED,
           "50 (thread 102 \"quote-desk\", exact; the highest of 4 threads)");
    /* holds: exact only; a thread eBPF saw no GIL activity of held it 0 ms */
    expect("thread[quote-desk].gil_hold_max_ms>5", REPORT, CHECK_FAILED,
           "6 (thread 102 \"quote-desk\", exact)");
    expect("thread[quote-desk].gil_hold_p99_ms>5", REPORT, CHECK_PASSED,
           "4 (thread 102 \"quote-desk\", exact)");
    expect("thread[crunch-0].gil_hold_max_ms>5", REPORT, CHECK_PASSED,
           "0 (thread 103 \"crunch-0\", exact)");

    static const char *const SAMPLED_ONLY =
        "{\"gil_exact\": null, \"threads\": [{\"tid\": 7, \"name\": \"w\", \"python_name\": \"w\","
        " \"gil_wait_stretches\": {\"count\": 2, \"p99_ms\": 33, \"max_ms\": 34}}]}";
    expect("thread[w].gil_wait_p99_ms>20", SAMPLED_ONLY, CHECK_FAILED,
           "33 (thread 7 \"w\", sampled)");
    expect("thread[w].gil_hold_p99_ms>5", SAMPLED_ONLY, CHECK_NOT_MEASURED,
           "not measured in this run for the 1 thread [w] matched");
}

static void test_thread_checks_next_to_report_checks(void **state)
{
    (void)state;
    struct check c[3];
    parse("gil_exact.held_pct>90", &c[0]);
    parse("thread[name~=e].gil_wait_pct>30", &c[1]);
    parse("thread[nobody].gil_wait_pct>30", &c[2]);
    json_object *report = json_tokener_parse(REPORT);
    checks_evaluate(c, 3, report);
    assert_int_equal(c[0].outcome, CHECK_FAILED);
    assert_int_equal(c[1].outcome, CHECK_FAILED); /* MainThread, quote-desk, Thread-2 (spin) */
    assert_string_equal(c[1].measured, "40 (thread 102 \"quote-desk\"; the highest of 3 threads)");
    assert_int_equal(c[2].outcome, CHECK_NOT_MEASURED);
    assert_int_equal(checks_failed(c, 3), 3);
    json_object *j = checks_json(c, 3), *v;
    assert_true(json_object_object_get_ex(json_object_array_get_idx(j, 1), "metric", &v));
    assert_string_equal(json_object_get_string(v), "thread[name~=e].gil_wait_pct");
    assert_true(json_object_object_get_ex(json_object_array_get_idx(j, 2), "result", &v));
    assert_string_equal(json_object_get_string(v), "not_measured");
    json_object_put(j);
    json_object_put(report);
    checks_free(c, 3);
}

int run_checks_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selectors_parse),
        cmocka_unit_test(test_bad_selectors_are_one_line_usage_errors),
        cmocka_unit_test(test_selectors_pick_threads),
        cmocka_unit_test(test_no_thread_matched_is_not_measured),
        cmocka_unit_test(test_any_matched_thread_decides),
        cmocka_unit_test(test_exact_figures_first_then_sampled),
        cmocka_unit_test(test_thread_checks_next_to_report_checks),
    };
    return cmocka_run_group_tests_name("fail-on per-thread checks", tests, NULL, NULL);
}
