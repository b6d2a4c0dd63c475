/* GIL blame on synthetic records: the bounded per-thread lists, victims
 * and aggressors, and the convoy rule's edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "analysis/blame_roles.h"
#include "analysis/diagnose.h"
#include "record/blame.h"

static struct code_info CRUNCH = {.addr = 0x7000, .name = "crunch", .filename = "s.py",
                                  .firstlineno = 30};

static void test_list_is_bounded(void **state)
{
    (void)state;
    struct blame_list l = {0};
    for (pid_t h = 1; h <= 3 * BLAME_MAX_ENTRIES; h++)
        blame_add(&l, h, 0x100 + (uint64_t)h, NULL, (uint64_t)h, 0);
    blame_add(&l, 1, 0x101, NULL, 5, 0); /* an existing pair, if still there, or "other" */
    assert_true(l.n <= BLAME_MAX_ENTRIES);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < l.n; i++)
        sum += l.v[i].count;
    uint64_t want = 5;
    for (uint64_t h = 1; h <= 3 * BLAME_MAX_ENTRIES; h++)
        want += h;
    assert_int_equal(sum, want); /* folded, never lost */
    blame_finish(&l, 2.0);
    assert_true(l.total_ms == 2.0 * (double)want);
    for (uint32_t i = 1; i < l.n; i++)
        assert_true(l.v[i - 1].ms >= l.v[i].ms);
    blame_free(&l);
}

struct fixture {
    struct run_metrics m;
    struct diagnosis d;
};

static struct fixture *fresh(double seconds)
{
    struct fixture *f = calloc(1, sizeof *f);
    metrics_init(&f->m);
    f->m.interval_us = 5000;
    f->m.duration_s = seconds;
    f->m.period_ms = 1.0;
    return f;
}

static void release(struct fixture *f)
{
    metrics_free(&f->m);
    free(f);
}

static struct thread_metrics *thread(struct fixture *f, pid_t tid, double held, double wait,
                                     double io)
{
    uint32_t i = metrics_add_thread(&f->m, tid, "t", 0x1000 + (uint64_t)tid);
    struct thread_metrics *t = &f->m.threads[i];
    t->pct[TS_GIL_HELD] = held;
    t->pct[TS_GIL_WAIT] = wait;
    t->pct[TS_IO_WAIT] = io;
    t->pct[TS_OTHER] = 100 - held - wait - io;
    return t;
}

/* A request thread in I/O half the time and waiting for the GIL 40%
 * behind two CPU-bound threads: the victim, they the aggressors. */
static void test_victim_and_aggressors(void **state)
{
    (void)state;
    struct fixture *f = fresh(4);
    struct thread_metrics *v = thread(f, 1, 1, 40, 59);
    v->nwait_runs = 100; /* bursts: 40 ms held / 100 wake-ups */
    v->wait.count = 100;
    v->wait.p99 = 20;
    blame_add(&v->blame_sampled, 2, CRUNCH.addr, &CRUNCH, 1000, 0);
    blame_add(&v->blame_sampled, 3, CRUNCH.addr, &CRUNCH, 550, 0);
    blame_add(&v->blame_sampled, 0, 0, NULL, 50, 0);
    thread(f, 2, 50, 50, 0);
    thread(f, 3, 49, 51, 0);
    blame_derive(&f->m);
    assert_int_equal(f->m.threads[0].role, ROLE_VICTIM);
    assert_int_equal(f->m.threads[1].role, ROLE_AGGRESSOR);
    assert_int_equal(f->m.threads[2].role, ROLE_AGGRESSOR);
    assert_true(f->m.threads[1].caused_ms == 1000.0);
    assert_true(f->m.threads[0].wait_ms == 1600.0);
    f->m.contended_pct = 90;
    f->m.waiters_mean = 2;
    f->m.handoffs_per_s = 200;
    diagnose(&f->m, &f->d);
    const struct finding *s2 = NULL;
    for (int i = 0; i < f->d.n; i++)
        if (strcmp(f->d.findings[i].scenario, "S2") == 0 && !f->d.findings[i].has_convoy)
            s2 = &f->d.findings[i];
    assert_non_null(s2);
    assert_int_equal(s2->nvictims, 1);
    assert_int_equal(s2->victims[0].tid, 1);
    assert_int_equal(s2->naggressors, 2);
    assert_int_equal(s2->aggressors[0].tid, 2); /* most of the victims' wait first */
    assert_non_null(strstr(s2->culprit, "crunch (s.py:30)"));
    release(f);

    /* the same wait with bursts as long as the waits: no victim */
    f = fresh(4);
    v = thread(f, 1, 30, 40, 30);
    v->nwait_runs = 20;
    v->wait.count = 20;
    v->wait.p99 = 20; /* burst 1200 ms / 20 = 60 ms */
    blame_add(&v->blame_sampled, 2, CRUNCH.addr, &CRUNCH, 1000, 0);
    thread(f, 2, 50, 50, 0);
    blame_derive(&f->m);
    assert_int_equal(f->m.threads[0].role, ROLE_NONE);
    assert_int_equal(f->m.threads[1].role, ROLE_NONE);
    release(f);
}

/* CPU-bound threads waiting for each other: nobody is a victim. */
static void test_cpu_pool_has_no_victim(void **state)
{
    (void)state;
    struct fixture *f = fresh(4);
    for (pid_t tid = 1; tid <= 4; tid++) {
        struct thread_metrics *t = thread(f, tid, 25, 75, 0);
        t->nwait_runs = 200;
        t->wait.count = 200;
        t->wait.p99 = 40;
        blame_add(&t->blame_sampled, tid % 4 + 1, CRUNCH.addr, &CRUNCH, 3000, 0);
    }
    blame_derive(&f->m);
    for (uint32_t i = 0; i < f->m.nthreads; i++) {
        assert_int_equal(f->m.threads[i].role, ROLE_NONE);
        assert_false(f->m.threads[i].latency_sensitive);
    }
    release(f);
}

/* An I/O thread waking up 190 times a second that waits `wait_ms` each
 * time behind a CPU-bound thread. */
static bool convoy_found(double wait_ms, double holder_gil_pct, struct convoy_figures *out)
{
    struct fixture *f = fresh(4);
    struct thread_metrics *io = thread(f, 1, 1, 90, 0);
    io->pct[TS_OTHER] = 9;
    io->nwait_runs = 760;
    io->wait.count = 760;
    io->wait.p99 = wait_ms * 1.2;
    blame_add(&io->blame_sampled, 2, CRUNCH.addr, &CRUNCH, (uint64_t)(760 * wait_ms), 0);
    thread(f, 2, holder_gil_pct - 5, 5, 0);
    blame_derive(&f->m);
    diagnose(&f->m, &f->d);
    bool found = false;
    for (int i = 0; i < f->d.n; i++)
        if (f->d.findings[i].has_convoy) {
            found = true;
            *out = f->d.findings[i].convoy;
            assert_string_equal(f->d.findings[i].scenario, "S2");
        }
    release(f);
    return found;
}

static void test_convoy_edges(void **state)
{
    (void)state;
    struct convoy_figures c;
    assert_true(convoy_found(5, 95, &c));
    assert_int_equal(c.tid, 1);
    assert_int_equal(c.holder, 2);
    assert_true(c.wakeups_per_s == 190.0);
    assert_true(c.wait_mean_ms == 5.0);
    assert_true(c.cap_model_per_s > 190 && c.cap_model_per_s < 200);
    assert_true(convoy_found(2.5, 95, &c));   /* half an interval */
    assert_false(convoy_found(2.4, 95, &c));  /* less: no convoy */
    assert_false(convoy_found(20, 95, &c));   /* four intervals: queueing, not one hand-back */
    assert_false(convoy_found(5, 50, &c));    /* the holder is not CPU-bound */
}

int run_blame_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_is_bounded),
        cmocka_unit_test(test_victim_and_aggressors),
        cmocka_unit_test(test_cpu_pool_has_no_victim),
        cmocka_unit_test(test_convoy_edges),
    };
    return cmocka_run_group_tests_name("blame", tests, NULL, NULL);
}
