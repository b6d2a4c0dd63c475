/* watch's records: the raw-sample ring keeps only its span and replays a
 * window of it into metrics of their own (threads by TID, exited ones
 * included); the timeline is a bounded ring; pruning drops exited threads
 * and tells the new indices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "record/metrics.h"
#include "record/sample_ring.h"
#include "record/timeline.h"

/* One sample at time t: thread 0 holds the GIL, the others wait for it. */
static void observe(struct run_metrics *m, struct sample_ring *r, double t)
{
    struct thread_obs obs[8];
    for (uint32_t i = 0; i < m->nthreads && i < 8; i++)
        obs[i] = (struct thread_obs){i, i == 0 ? TS_GIL_HELD : TS_GIL_WAIT, 0, 0, -1, NULL, NULL, 0, 0, 0, -1, false};
    struct sample_obs so = {t, true, 1, 0, obs, m->nthreads < 8 ? m->nthreads : 8};
    metrics_observe(m, &so);
    sample_ring_push(r, m, &so);
}

static void test_ring_keeps_its_span_and_replays_a_window(void **state)
{
    (void)state;
    struct run_metrics live, out;
    struct sample_ring r;
    metrics_init(&live);
    live.requested_rate_hz = 100;
    live.sample_period_s = 0.01;
    sample_ring_init(&r, 5.0);
    metrics_add_thread(&live, 101, "holder", 0x1000);
    metrics_add_thread(&live, 102, "waiter", 0x2000);
    for (int i = 0; i < 1000; i++) /* 10 s at 100 Hz */
        observe(&live, &r, i * 0.01);
    /* only the last 5 s (and the sample at its edge) are kept */
    assert_true(r.count >= 500 && r.count <= 502);
    assert_true(sample_ring_newest(&r) > 9.98);
    metrics_init(&out);
    uint64_t n = sample_ring_replay(&r, 7.0, 9.0, &live, &out);
    assert_true(n >= 199 && n <= 201);
    assert_int_equal(out.nthreads, 2);
    assert_int_equal(out.threads[0].tid, 101);
    assert_string_equal(out.threads[1].name, "waiter");
    assert_int_equal(out.threads[0].state[TS_GIL_HELD], n);
    assert_int_equal(out.threads[1].state[TS_GIL_WAIT], n);
    assert_true(out.duration_s > 1.99 && out.duration_s < 2.01);
    assert_int_equal(out.held, n);
    metrics_free(&out);
    /* a window before what is kept replays nothing */
    metrics_init(&out);
    assert_int_equal(sample_ring_replay(&r, 0.0, 4.0, &live, &out), 0);
    metrics_free(&out);
    sample_ring_free(&r);
    metrics_free(&live);
}

static void test_exited_threads_leave_and_still_replay(void **state)
{
    (void)state;
    struct run_metrics live, out;
    struct sample_ring r;
    metrics_init(&live);
    live.requested_rate_hz = 100;
    sample_ring_init(&r, 5.0);
    metrics_add_thread(&live, 201, "main", 0x1000);
    metrics_add_thread(&live, 202, "gone", 0x2000);
    metrics_add_thread(&live, 203, "stays", 0x3000);
    for (int i = 0; i < 100; i++)
        observe(&live, &r, i * 0.01);
    live.threads[1].exited = true;
    sample_ring_note_threads(&r, &live);
    uint32_t remap[3];
    assert_int_equal(metrics_prune_exited(&live, remap), 1);
    assert_int_equal(live.nthreads, 2);
    assert_int_equal(remap[0], 0);
    assert_int_equal(remap[1], UINT32_MAX);
    assert_int_equal(remap[2], 1);
    assert_int_equal(live.threads[1].tid, 203);
    /* the exited thread's samples are still in the ring, named, exited */
    metrics_init(&out);
    sample_ring_replay(&r, 0.0, 1.0, &live, &out);
    assert_int_equal(out.nthreads, 3);
    assert_int_equal(out.threads[1].tid, 202);
    assert_true(out.threads[1].exited);
    assert_int_equal(out.py_exited, 1);
    metrics_free(&out);
    sample_ring_free(&r);
    metrics_free(&live);
}

static void test_timeline_is_a_bounded_ring(void **state)
{
    (void)state;
    struct timeline tl;
    assert_int_equal(timeline_init(&tl, 10), 0);
    struct run_metrics m;
    metrics_init(&m);
    for (int s = 1; s <= 25; s++) {
        m.held_pct = s;
        timeline_add(&tl, &m, s, 1e9 + s, 1000);
    }
    assert_int_equal(tl.count, 10);
    assert_true(timeline_at(&tl, 0)->t == 16);
    assert_true(timeline_at(&tl, 9)->held_pct == 25);
    assert_null(timeline_at(&tl, 10));
    metrics_free(&m);
    timeline_free(&tl);
}

int run_watch_record_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_keeps_its_span_and_replays_a_window),
        cmocka_unit_test(test_exited_threads_leave_and_still_replay),
        cmocka_unit_test(test_timeline_is_a_bounded_ring),
    };
    return cmocka_run_group_tests_name("watch records", tests, NULL, NULL);
}
