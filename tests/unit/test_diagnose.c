/* The rule table on synthetic metrics: each threshold's edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "analysis/diagnose.h"
#include "analysis/diagnose_children.h"
#include "record/loops.h"
#include "report/common.h"

static struct code_info CODE = {.name = "work", .filename = "app.py", .firstlineno = 1};

struct fixture {
    struct run_metrics m;
    struct diagnosis d;
};

static struct fixture *fresh(void)
{
    struct fixture *f = calloc(1, sizeof *f);
    metrics_init(&f->m);
    f->m.interval_us = 5000;
    f->m.stall_ms = 100;
    return f;
}

static void release(struct fixture *f)
{
    metrics_free(&f->m);
    free(f);
}

static const struct finding *find(const struct diagnosis *d, const char *scenario)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->findings[i].scenario, scenario) == 0)
            return &d->findings[i];
    return NULL;
}

static void gil(struct fixture *f, double contended, double waiters, double handoffs)
{
    uint32_t t = metrics_add_thread(&f->m, 10, "w", 0x1000);
    f->m.threads[t].pct[TS_GIL_WAIT] = 70;
    f->m.contended_pct = contended;
    f->m.waiters_mean = waiters;
    f->m.handoffs_per_s = handoffs;
}

static void test_s2_edges(void **state)
{
    (void)state;
    struct fixture *f = fresh();
    gil(f, 50, 1.5, 50);
    diagnose(&f->m, &f->d);
    const struct finding *s2 = find(&f->d, "S2");
    assert_non_null(s2);
    assert_int_equal(s2->severity, SEV_WARNING);
    release(f);

    double cases[][3] = {{49.9, 1.5, 50}, {50, 1.49, 50}, {50, 1.5, 49.9}};
    for (size_t i = 0; i < 3; i++) {
        f = fresh();
        gil(f, cases[i][0], cases[i][1], cases[i][2]);
        diagnose(&f->m, &f->d);
        assert_null(find(&f->d, "S2"));
        release(f);
    }
    f = fresh();
    gil(f, 90, 3.0, 200);
    diagnose(&f->m, &f->d);
    assert_int_equal(find(&f->d, "S2")->severity, SEV_CRITICAL);
    release(f);

    /* Starved of CPU: few hand-offs per wall second, many per CPU-second
     * (a tenth of a CPU); the evidence says which rate made it. */
    f = fresh();
    gil(f, 100, 7.0, 20);
    f->m.duration_s = 3;
    f->m.cpu_s = 0.3;
    f->m.handoffs_per_cpu_s = 50;
    diagnose(&f->m, &f->d);
    s2 = find(&f->d, "S2");
    assert_non_null(s2);
    assert_string_equal(s2->evidence[2].metric, "gil.handoffs_per_cpu_s");
    assert_non_null(strstr(s2->verdict, "10% of one CPU"));
    release(f);
    f = fresh();
    gil(f, 100, 7.0, 20);
    f->m.handoffs_per_cpu_s = 49.9;
    diagnose(&f->m, &f->d);
    assert_null(find(&f->d, "S2"));
    release(f);
}

static void lock(struct fixture *f, uint32_t waiters, double wait_pct)
{
    f->m.locks = calloc(1, sizeof *f->m.locks);
    f->m.nlocks = f->m.caplocks = 1;
    f->m.locks[0].addr = 0xabc;
    for (uint32_t i = 0; i < waiters; i++)
        f->m.locks[0].waiters[f->m.locks[0].nwaiters++] =
            metrics_add_thread(&f->m, (pid_t)(20 + i), "w", 0x2000 + i);
    f->m.locks[0].wait_pct = wait_pct;
}

static void test_s5_edges(void **state)
{
    (void)state;
    struct { uint32_t waiters; double pct; int expect; } cases[] = {
        {2, 20, SEV_WARNING}, {2, 19.9, -1}, {1, 90, -1}, {3, 50, SEV_CRITICAL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fixture *f = fresh();
        lock(f, cases[i].waiters, cases[i].pct);
        diagnose(&f->m, &f->d);
        const struct finding *s5 = find(&f->d, "S5");
        if (cases[i].expect < 0)
            assert_null(s5);
        else {
            assert_non_null(s5);
            assert_int_equal(s5->severity, cases[i].expect);
            assert_non_null(strstr(s5->culprit, "0xabc"));
        }
        release(f);
    }
}

static void loop(struct fixture *f, double stalled_pct, double max_ms, bool on_cpu, double lag)
{
    uint32_t t = metrics_add_thread(&f->m, 30, "loop", 0x3000);
    struct loop_track *l = &f->m.threads[t].loop;
    struct py_frame fr = {.code = &CODE, .line = 7};
    l->seen = true;
    l->nstalls = 2;
    l->stalled_pct = stalled_pct;
    l->stall_max_ms = max_ms;
    l->timer_lag_max_ms = lag;
    l->nculprits = 1;
    l->culprits[0].frame = stack_table_intern(&f->m.stacks, &fr, 1);
    l->culprits[0].share_pct = 100;
    l->culprits[0].on_cpu_samples = on_cpu ? 10 : 0;
    l->culprits[0].blocked_samples = on_cpu ? 0 : 10;
    l->culprits[0].syscall = on_cpu ? -1 : 230;
}

static void test_loop_edges(void **state)
{
    (void)state;
    struct fixture *f = fresh();
    loop(f, 5, 300, true, 99);
    diagnose(&f->m, &f->d);
    const struct finding *s1 = find(&f->d, "S1");
    assert_non_null(s1);
    assert_int_equal(s1->severity, SEV_WARNING);
    assert_non_null(strstr(s1->culprit, "work (app.py:7), on CPU"));
    assert_null(find(&f->d, "S7")); /* 99 ms of lateness: below the info level */
    release(f);

    f = fresh();
    loop(f, 4.9, 300, true, 100);
    diagnose(&f->m, &f->d);
    assert_null(find(&f->d, "S1"));
    assert_int_equal(find(&f->d, "S7")->severity, SEV_INFO);
    release(f);

    f = fresh();
    loop(f, 20, 300, false, 250);
    diagnose(&f->m, &f->d);
    assert_null(find(&f->d, "S1"));
    const struct finding *s3 = find(&f->d, "S3");
    assert_non_null(s3);
    assert_int_equal(s3->severity, SEV_CRITICAL);
    assert_non_null(strstr(s3->culprit, "clock_nanosleep"));
    /* late timers, but no timeout known to be pending: S7 information only */
    assert_int_equal(find(&f->d, "S7")->severity, SEV_INFO);
    /* Most severe first. */
    assert_string_equal(f->d.findings[0].scenario, "S3");
    release(f);

    /* timeouts seen on its heap expire in its stalls: S7, critical, leads */
    f = fresh();
    loop(f, 20, 300, true, 250);
    struct loop_timers *lt = &f->m.threads[f->m.nthreads - 1].loop.timers;
    lt->read = true;
    lt->timeouts_seen = 40;
    lt->timeouts_pending_max = 8;
    lt->timeouts_expired = 9;
    lt->timeouts_expired_in_stalls = 9;
    diagnose(&f->m, &f->d);
    assert_int_equal(find(&f->d, "S1")->severity, SEV_CRITICAL);
    assert_string_equal(f->d.findings[0].scenario, "S7");
    assert_int_equal(f->d.findings[0].severity, SEV_CRITICAL);
    assert_non_null(strstr(f->d.findings[0].verdict, "9 asyncio timeouts"));
    release(f);

    f = fresh();
    loop(f, 6, 1000, true, 0);
    diagnose(&f->m, &f->d);
    assert_int_equal(find(&f->d, "S1")->severity, SEV_CRITICAL); /* a 1 s stall */
    release(f);
}

/* --native puts C frames above the Python ones: the loop is still idle in
 * its selector, busy in a callback, and the culprit is the Python line with
 * the C function above it. */
static void test_loop_native_frames(void **state)
{
    (void)state;
    static struct code_info epoll = {.name = "epoll_wait", .filename = "[libc.so.6]",
                                     .firstlineno = -1, .native = true};
    static struct code_info poll = {.name = "select_epoll_poll", .filename = "[select.so]",
                                    .firstlineno = -1, .native = true};
    static struct code_info eval = {.name = "_PyEval_EvalFrameDefault",
                                    .filename = "[libpython3.12.so]", .firstlineno = -1,
                                    .native = true};
    static struct code_info sel = {.name = "EpollSelector.select",
                                   .filename = "/usr/lib/python3.12/selectors.py"};
    static struct code_info run_once = {.name = "BaseEventLoop._run_once",
                                        .filename = "/usr/lib/python3.12/asyncio/base_events.py"};
    struct stack_table st;
    stack_table_init(&st);
    struct loop_classifier lc = {0};
    struct loop_track track;
    memset(&track, 0, sizeof track);
    struct py_frame idle[] = {{&epoll, -1, false}, {&poll, -1, false}, {&sel, 468, false},
                              {&eval, -1, false}, {&run_once, 1949, false}};
    uint32_t idle_id = stack_table_intern(&st, idle, 5);
    assert_int_equal(loops_classify(&lc, &st, &track, idle_id, 232), LOOP_IDLE);
    struct py_frame busy[] = {{&epoll, -1, false}, {&CODE, 7, false}, {&eval, -1, false},
                              {&run_once, 1949, false}};
    uint32_t busy_id = stack_table_intern(&st, busy, 4);
    assert_int_equal(loops_classify(&lc, &st, &track, busy_id, 232), LOOP_BUSY);

    const struct stack_entry *e = stack_table_get(&st, busy_id);
    assert_int_equal(stack_python_top(e), 1);
    struct py_frame site[2];
    assert_int_equal(stack_site_frames(e, site), 2);
    assert_ptr_equal(site[0].code, &epoll);
    assert_ptr_equal(site[1].code, &CODE);
    char text[256];
    stack_site_text(e, text, sizeof text);
    assert_string_equal(text, "work (app.py:7), in C: epoll_wait ([libc.so.6])");
    free(lc.kind);
    stack_table_free(&st);
}

/* A loop fed sample by sample (1 ms apart): `cycles` times `busy` samples
 * out of the selector then `idle` in it. Busy samples run `nfuncs`
 * functions in turn, on CPU or not, each on three lines of its own. */
static void saturated_loop(struct fixture *f, int cycles, int busy, int idle, int nfuncs,
                           bool on_cpu)
{
    static struct code_info funcs[4] = {
        {.name = "work", .filename = "app.py", .firstlineno = 1},
        {.name = "parse", .filename = "app.py", .firstlineno = 20},
        {.name = "render", .filename = "app.py", .firstlineno = 40},
        {.name = "log", .filename = "app.py", .firstlineno = 60},
    };
    uint32_t t = metrics_add_thread(&f->m, 30, "loop", 0x3000);
    struct loop_track *l = &f->m.threads[t].loop;
    double now = 0, period = 0.001;
    for (int c = 0; c < cycles; c++) {
        for (int i = 0; i < busy; i++, now += period) {
            struct py_frame fr = {.code = &funcs[i % nfuncs], .line = funcs[i % nfuncs].firstlineno + 1 + i % 3};
            uint32_t id = stack_table_intern(&f->m.stacks, &fr, 1);
            loops_observe(l, &f->m.stacks, LOOP_BUSY, now, period, f->m.stall_ms, id, on_cpu,
                          !on_cpu, -1, NULL);
        }
        for (int i = 0; i < idle; i++, now += period)
            loops_observe(l, &f->m.stacks, LOOP_IDLE, now, period, f->m.stall_ms, 0, false, false,
                          232, NULL);
    }
    loops_finish(l, now, period, f->m.stall_ms, now);
}

/* Busy >= 50% of the time with one function >= 30% of that busy time is a
 * finding even when no stretch reaches the stall threshold. */
static void test_loop_saturation_edges(void **state)
{
    (void)state;
    struct fixture *f = fresh();
    saturated_loop(f, 30, 60, 20, 1, true); /* 75% busy, 60 ms stretches */
    diagnose(&f->m, &f->d);
    const struct finding *s1 = find(&f->d, "S1");
    assert_non_null(s1);
    assert_int_equal(s1->severity, SEV_WARNING);
    assert_non_null(strstr(s1->title, "saturates"));
    /* Told by function: its three lines are one culprit, at its first line. */
    assert_string_equal(s1->culprit, "work (app.py:1), on CPU");
    assert_non_null(strstr(s1->verdict, "busy 75%"));
    assert_non_null(strstr(s1->verdict, "longest 60 ms"));
    assert_null(find(&f->d, "S3"));
    release(f);

    f = fresh();
    saturated_loop(f, 30, 48, 52, 1, true); /* 48% busy: below the rule */
    diagnose(&f->m, &f->d);
    assert_null(find(&f->d, "S1"));
    release(f);

    f = fresh();
    saturated_loop(f, 30, 60, 20, 4, true); /* four functions, 25% each */
    diagnose(&f->m, &f->d);
    assert_null(find(&f->d, "S1"));
    release(f);

    f = fresh();
    saturated_loop(f, 30, 60, 20, 3, true); /* three functions, 33% each */
    diagnose(&f->m, &f->d);
    assert_non_null(find(&f->d, "S1"));
    release(f);

    f = fresh();
    saturated_loop(f, 30, 60, 20, 1, false); /* busy waiting, not computing */
    diagnose(&f->m, &f->d);
    assert_null(find(&f->d, "S1"));
    release(f);

    /* Stalls past the threshold: the stall finding, and only it. */
    f = fresh();
    saturated_loop(f, 10, 150, 50, 1, true);
    diagnose(&f->m, &f->d);
    s1 = find(&f->d, "S1");
    assert_non_null(s1);
    assert_non_null(strstr(s1->title, "blocks"));
    int n = 0;
    for (int i = 0; i < f->d.n; i++)
        n += strcmp(f->d.findings[i].scenario, "S1") == 0;
    assert_int_equal(n, 1);
    release(f);
}

static json_object *child_report(int pid, const char *findings_json)
{
    char text[2048];
    snprintf(text, sizeof text, "{\"pid\": %d, \"findings\": %s}", pid, findings_json);
    json_object *o = json_tokener_parse(text);
    assert_non_null(o);
    return o;
}

#define S2_FINDING(sev, waiters)                                                                  \
    "{\"scenario\": \"S2\", \"severity\": \"" sev "\", \"title\": \"GIL thrashing\", "           \
    "\"verdict\": \"threads wait\", \"culprit\": \"score (w.py:3)\", \"advice\": \"use processes\", " \
    "\"evidence\": [{\"metric\": \"gil.waiters_mean\", \"value\": " waiters ", \"op\": \">=\", "  \
    "\"threshold\": 1.5}]}"

/* Subprocesses' findings join the target's diagnosis: one per scenario,
 * "in N of M", the worst child's evidence first, sorted with the rest. */
static void test_children_rolled_up(void **state)
{
    (void)state;
    struct fixture *f = fresh();
    diagnose(&f->m, &f->d);
    assert_int_equal(f->d.n, 0); /* the master itself: nothing */
    json_object *kids[4] = {
        child_report(101, "[" S2_FINDING("warning", "2.0") "]"),
        NULL, /* a child that could not be sampled */
        child_report(102, "[" S2_FINDING("critical", "3.5") "]"),
        child_report(103, "[]"),
    };
    diagnose_add_children(&f->d, kids, 4);
    assert_int_equal(f->d.n, 1);
    const struct finding *s2 = &f->d.findings[0];
    assert_string_equal(s2->scenario, "S2");
    assert_int_equal(s2->severity, SEV_CRITICAL); /* the worst child's */
    assert_int_equal(s2->nchildren, 2);
    assert_int_equal(s2->children[0], 102);
    assert_int_equal(s2->children[1], 101);
    assert_int_equal(s2->children_sampled, 3);
    assert_non_null(strstr(s2->verdict, "in 2 of 3 sampled subprocesses"));
    assert_non_null(strstr(s2->culprit, "in PID 102: score (w.py:3)"));
    assert_string_equal(s2->evidence[0].metric, "gil.waiters_mean");
    assert_true(s2->evidence[0].value == 3.5);
    release(f);
    for (int i = 0; i < 4; i++)
        json_object_put(kids[i]);

    /* The target's own warning stays ahead of a child's at equal severity;
     * a child's critical goes first. */
    f = fresh();
    gil(f, 60, 2.0, 100); /* the target's own S2 warning */
    diagnose(&f->m, &f->d);
    json_object *one[1] = {child_report(201, "[" S2_FINDING("warning", "1.6") "]")};
    diagnose_add_children(&f->d, one, 1);
    assert_int_equal(f->d.n, 2);
    assert_int_equal(f->d.findings[0].nchildren, 0);
    assert_int_equal(f->d.findings[1].nchildren, 1);
    json_object_put(one[0]);
    one[0] = child_report(202, "[" S2_FINDING("critical", "4") "]");
    diagnose_add_children(&f->d, one, 1);
    assert_int_equal(f->d.findings[0].children[0], 202);
    json_object_put(one[0]);
    release(f);
}

static void test_nothing_wrong(void **state)
{
    (void)state;
    struct fixture *f = fresh();
    gil(f, 10, 0.1, 500);
    diagnose(&f->m, &f->d);
    assert_int_equal(f->d.n, 0);
    release(f);
}

static void test_s4_edges(void **state)
{
    (void)state;
    struct fixture *f = fresh();
    f->m.system.cpu.logical = f->m.system.cpu.affinity = 2;
    f->m.system.children_growth_per_s = 1.0;
    f->m.system.tree_end.children = 5;
    diagnose(&f->m, &f->d);
    assert_int_equal(find(&f->d, "S4")->severity, SEV_WARNING);
    release(f);
    f = fresh();
    f->m.system.children_growth_per_s = 0.9;
    f->m.system.tree_end.zombies = 2;
    diagnose(&f->m, &f->d);
    assert_null(find(&f->d, "S4"));
    release(f);
    f = fresh();
    f->m.system.cpu.logical = f->m.system.cpu.affinity = 2;
    f->m.system.tree_end.zombies = 3;
    f->m.system.tree_end.children = 9; /* more than 4 per CPU */
    diagnose(&f->m, &f->d);
    assert_int_equal(find(&f->d, "S4")->severity, SEV_CRITICAL);
    release(f);
}

static void test_s6_edges(void **state)
{
    (void)state;
    struct { int workers; double cpu_pct; double quota; bool fires; } cases[] = {
        {3, 100, 0, true}, {2, 190, 0, false}, {3, 99, 0, false}, {2, 90, 1.0, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fixture *f = fresh();
        f->m.system.cpu.logical = 4;
        f->m.system.cpu.physical = 2;
        f->m.system.cpu.affinity = 4;
        f->m.system.cpu.quota_cpus = cases[i].quota;
        f->m.system.tree_end.cpu_bound_children = cases[i].workers;
        f->m.system.tree_end.children_cpu_pct = cases[i].cpu_pct;
        diagnose(&f->m, &f->d);
        if (cases[i].fires)
            assert_non_null(find(&f->d, "S6"));
        else
            assert_null(find(&f->d, "S6"));
        release(f);
    }
}

static void test_s8_edges(void **state)
{
    (void)state;
    struct fixture *f = fresh();
    f->m.py_max = f->m.py_min = 99;
    f->m.system.rss_growth_kb_per_s = 5000;
    diagnose(&f->m, &f->d);
    assert_null(find(&f->d, "S8"));
    release(f);
    f = fresh();
    f->m.py_max = f->m.py_min = 100;
    f->m.system.rss_growth_kb_per_s = 1023;
    diagnose(&f->m, &f->d);
    assert_int_equal(find(&f->d, "S8")->severity, SEV_INFO);
    release(f);
    f = fresh();
    f->m.py_max = 300;
    f->m.py_min = 200;
    f->m.system.rss_growth_kb_per_s = 1024;
    diagnose(&f->m, &f->d);
    assert_int_equal(find(&f->d, "S8")->severity, SEV_WARNING);
    assert_non_null(strstr(find(&f->d, "S8")->verdict, "thread count grew"));
    release(f);
}

int run_diagnose_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s2_edges),
        cmocka_unit_test(test_s5_edges),
        cmocka_unit_test(test_loop_edges),
        cmocka_unit_test(test_loop_native_frames),
        cmocka_unit_test(test_loop_saturation_edges),
        cmocka_unit_test(test_children_rolled_up),
        cmocka_unit_test(test_nothing_wrong),
        cmocka_unit_test(test_s4_edges),
        cmocka_unit_test(test_s6_edges),
        cmocka_unit_test(test_s8_edges),
    };
    return cmocka_run_group_tests_name("diagnose", tests, NULL, NULL);
}
