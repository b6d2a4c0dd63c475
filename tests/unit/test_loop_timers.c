/* An event loop's timers and task counts, from made-up heaps and counts:
 * lateness from the busy stretch a timer waited in, timeouts expired in
 * stalls, cancelled ones never counted, the task series' memory bound
 * and its growth fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "record/loop_tasks.h"
#include "record/loop_timers.h"

static void scan(struct loop_timers *lt, double t, const struct asyncio_timer *v, uint32_t n,
                 bool busy, double run_start)
{
    loop_timers_scan(lt, t, v, n, n, 0, busy, run_start);
}

/* A 300 ms stall from 1.0 s: a timer due at 1.05 s, seen overdue inside
 * it, runs when it ends (250 ms late); one due at 1.5 s (idle then) is on
 * time; a timeout due at 1.1 s expires in the stall; a cancelled timeout
 * due at 1.2 s never counts. */
static void test_lateness_and_expired_timeouts(void **state)
{
    (void)state;
    struct loop_timers lt = {0};
    struct asyncio_timer before[] = {
        {.handle = 0x1000, .when = 1.05, .cancelled = false, .timeout = false},
        {.handle = 0x2000, .when = 1.5, .cancelled = false, .timeout = false},
        {.handle = 0x3000, .when = 1.1, .cancelled = false, .timeout = true},
        {.handle = 0x4000, .when = 1.2, .cancelled = false, .timeout = true}};
    scan(&lt, 0.95, before, 4, false, 0);
    assert_int_equal(lt.timeouts_seen, 2);
    assert_int_equal(lt.timeouts_pending, 2);
    before[3].cancelled = true;           /* the awaited work finished in time */
    scan(&lt, 1.2, before, 4, true, 1.0); /* inside the stall */
    assert_int_equal(lt.timeouts_expired, 1);
    assert_int_equal(lt.run_expired, 1);
    assert_int_equal(loop_timers_stretch_end(&lt, 1.0, 1.3, true), 1);
    assert_int_equal(lt.timeouts_expired_in_stalls, 1);
    /* after the stall the loop ran 0x1000 and 0x3000 and dropped 0x4000 */
    scan(&lt, 1.35, &before[1], 1, false, 0);
    assert_int_equal(lt.ran, 2);
    /* 0x2000 ran on time */
    scan(&lt, 1.55, NULL, 0, false, 0);
    assert_int_equal(lt.ran, 3);
    loop_timers_derive(&lt);
    assert_true(lt.lag_max_ms > 249.0 && lt.lag_max_ms < 251.0); /* 0x1000: 1.05 -> 1.3 */
    assert_int_equal(lt.late, 2);
    assert_true(lt.lag_p50_ms > 199.0 && lt.lag_p50_ms < 201.0); /* 0x3000: 1.1 -> 1.3 */
    loop_timers_free(&lt);
}

/* A timer due just before a busy stretch that it then waits all of: late
 * by the stretch, not on time because its deadline fell in idle time. */
static void test_timer_due_before_a_stall_waits_it_out(void **state)
{
    (void)state;
    struct loop_timers lt = {0};
    struct asyncio_timer v[] = {
        {.handle = 0x1000, .when = 0.99, .cancelled = false, .timeout = false}};
    scan(&lt, 1.1, v, 1, true, 1.0);
    loop_timers_stretch_end(&lt, 1.0, 1.4, true);
    scan(&lt, 1.45, NULL, 0, false, 0);
    loop_timers_derive(&lt);
    assert_true(lt.lag_max_ms > 409.0 && lt.lag_max_ms < 411.0);
    loop_timers_free(&lt);
}

/* A handle address reused by another timer is a new timer. */
static void test_reused_address_is_a_new_timer(void **state)
{
    (void)state;
    struct loop_timers lt = {0};
    struct asyncio_timer
        a[] = {{.handle = 0x1000, .when = 1.0, .cancelled = false, .timeout = true}},
        b[] = {{.handle = 0x1000, .when = 2.0, .cancelled = false, .timeout = true}};
    scan(&lt, 0.5, a, 1, false, 0);
    scan(&lt, 1.5, b, 1, false, 0);
    assert_int_equal(lt.timeouts_seen, 2);
    assert_int_equal(lt.ran, 1);
    loop_timers_free(&lt);
}

/* 100 tasks more a second for 10 s: growing, 100/s, and the series stays
 * within its points however long the run. */
static void test_task_growth_and_bounded_series(void **state)
{
    (void)state;
    struct loop_tasks *lt = calloc(1, sizeof *lt);
    for (int s = 0; s <= 10; s++)
        loop_tasks_add(lt, s, 50 + 100 * (uint32_t)s, true);
    loop_tasks_derive(lt);
    assert_true(lt->growing);
    assert_true(lt->growth_per_s > 99.9 && lt->growth_per_s < 100.1);
    assert_true(lt->fit_r2 > 0.999);
    for (int s = 11; s < 100000; s++)
        loop_tasks_add(lt, s, 50 + 100 * (uint32_t)s, true);
    assert_true(lt->n <= LOOP_TASK_POINTS && lt->n >= LOOP_TASK_POINTS / 2);
    assert_int_equal(lt->last, 50 + 100 * 99999);
    loop_tasks_derive(lt);
    assert_true(lt->growing && lt->growth_per_s > 99.0 && lt->growth_per_s < 101.0);
    free(lt);
}

/* Churn around a steady count, and a big count that gains a few: not
 * growth. */
static void test_steady_counts_are_not_growth(void **state)
{
    (void)state;
    struct loop_tasks *lt = calloc(1, sizeof *lt);
    for (int s = 0; s <= 20; s++)
        loop_tasks_add(lt, s, 14 + (uint32_t)(s % 3), false);
    loop_tasks_derive(lt);
    assert_false(lt->growing);
    memset(lt, 0, sizeof *lt);
    for (int s = 0; s <= 20; s++)
        loop_tasks_add(lt, s, 1000 + (uint32_t)s, false);
    loop_tasks_derive(lt);
    assert_false(lt->growing); /* +20 on 1000 */
    free(lt);
}

int run_loop_timers_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lateness_and_expired_timeouts),
        cmocka_unit_test(test_timer_due_before_a_stall_waits_it_out),
        cmocka_unit_test(test_reused_address_is_a_new_timer),
        cmocka_unit_test(test_task_growth_and_bounded_series),
        cmocka_unit_test(test_steady_counts_are_not_growth),
    };
    return cmocka_run_group_tests_name("loop timers and tasks", tests, NULL, NULL);
}
