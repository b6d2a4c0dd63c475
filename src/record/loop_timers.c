/* An event loop's timers, measured: see record/loop_timers.h. */
#include "record/loop_timers.h"

#include <stdlib.h>
#include <string.h>

#include "util/quantiles.h"

static bool ensure(struct loop_timers *lt)
{
    if (lt->v)
        return true;
    lt->v = calloc(LOOP_TIMERS_TRACKED, sizeof *lt->v);
    lt->next = calloc(LOOP_TIMERS_TRACKED, sizeof *lt->next);
    if (!lt->rng)
        lt->rng = 0x9E3779B97F4A7C15ULL;
    if (lt->v && lt->next)
        return true;
    free(lt->v);
    free(lt->next);
    lt->v = lt->next = NULL;
    return false;
}

/* The end of the busy stretch that holds moment d; d itself when the
 * loop was in its selector then. */
static double stretch_end_at(const struct loop_timers *lt, double d)
{
    for (uint32_t k = 0; k < lt->ring_n; k++) {
        const struct loop_stretch *s =
            &lt->ring[(lt->ring_head + LOOP_STRETCHES - 1 - k) % LOOP_STRETCHES];
        if (s->start <= d && d <= s->end)
            return s->end;
        if (s->end < d)
            break; /* newest first: every older one ended earlier */
    }
    return d;
}

static void add_lag(struct loop_timers *lt, double ms)
{
    lt->ran++;
    lt->late += ms > 0;
    lt->lag_sum_ms += ms;
    if (ms > lt->lag_max_ms)
        lt->lag_max_ms = ms;
    if (lt->ran <= LOOP_LAGS_KEPT) {
        lt->lags[lt->ran - 1] = ms;
        return;
    }
    lt->rng ^= lt->rng << 13; /* xorshift64: which kept value this one replaces, if any */
    lt->rng ^= lt->rng >> 7;
    lt->rng ^= lt->rng << 17;
    uint64_t k = lt->rng % lt->ran;
    if (k < LOOP_LAGS_KEPT)
        lt->lags[k] = ms;
}

/* A timer followed until now is no longer in the heap at t. */
static void left_heap(struct loop_timers *lt, const struct loop_timer_seen *s, double t, bool busy,
                      double run_start)
{
    if (s->cancelled || s->when > t)
        return; /* cancelled (and dropped from the heap): it never ran */
    /* It was still waiting at its deadline and when last seen, whichever
     * came later, and ran once the loop was done with what it was busy
     * with then (a timer due just before a stall began waits all of it) */
    double waiting = s->last_seen > s->when ? s->last_seen : s->when;
    double end = busy && waiting >= run_start ? t : stretch_end_at(lt, waiting);
    add_lag(lt, (end - s->when) * 1000.0);
}

void loop_timers_scan(struct loop_timers *lt, double t, const struct asyncio_timer *v, uint32_t n,
                      uint64_t total, double clock, bool busy, double run_start)
{
    if (!ensure(lt))
        return;
    lt->read = true;
    lt->seen_idle |= !busy;

    if (total > lt->heap_max)
        lt->heap_max = total;
    addrmap_clear(&lt->index);
    for (uint32_t i = 0; i < lt->n; i++)
        addrmap_put(&lt->index, lt->v[i].handle, (void *)(uintptr_t)(i + 1));
    uint32_t m = 0, pending = 0;
    /* A timer due before the loop last waited in its selector would have
     * run then: such a deadline is a float freed and reused under the
     * read (a torn read: seen thousands of seconds off), dropped. Ten
     * seconds' margin: a loop woken for a timer may wait for a CPU, or
     * for the GIL, that long on a starved machine. */
    double floor = (busy ? run_start : t) - 10.0;
    for (uint32_t i = 0; i < n; i++) {
        double when = v[i].when - clock;
        if (when < floor && lt->seen_idle) {
            lt->implausible++;
            continue;
        }
        uintptr_t at = (uintptr_t)addrmap_get(&lt->index, v[i].handle);
        struct loop_timer_seen *old = at ? &lt->v[at - 1] : NULL;
        if (old && (old->when != when || old->timeout != v[i].timeout)) {
            left_heap(lt, old, t, busy, run_start); /* its address now holds another timer */
            old->handle = 0;
            old = NULL;
        }
        if (m == LOOP_TIMERS_TRACKED) {
            lt->untracked = true;
            continue;
        }
        struct loop_timer_seen *s = &lt->next[m++];
        *s = old ? *old
                 : (struct loop_timer_seen){
                       .handle = v[i].handle, .when = when, .timeout = v[i].timeout};
        if (old)
            old->handle = 0; /* still in the heap */
        else
            lt->timeouts_seen += s->timeout;
        s->last_seen = t;
        s->cancelled = v[i].cancelled;
        if (!s->timeout || s->cancelled)
            continue;
        if (when > t) {
            pending++;
        } else if (!s->overdue) {
            /* due, not run, not cancelled: it fires when the loop gets to it */
            s->overdue = true;
            lt->timeouts_expired++;
            lt->run_expired += busy;
        }
    }
    for (uint32_t i = 0; i < lt->n; i++)
        if (lt->v[i].handle)
            left_heap(lt, &lt->v[i], t, busy, run_start);
    struct loop_timer_seen *swap = lt->v;
    lt->v = lt->next;
    lt->next = swap;
    lt->n = m;
    lt->timeouts_pending = pending;
    if (pending > lt->timeouts_pending_max)
        lt->timeouts_pending_max = pending;
}

uint32_t loop_timers_stretch_end(struct loop_timers *lt, double start, double end, bool stall)
{
    /* A timeout seen pending, not cancelled, inside this stretch and due
     * before it ended expired in it: the loop could not get to it, nor
     * could anything cancel it (a busy loop's heap stands still) - however
     * long after its deadline the next read comes. */
    for (uint32_t i = 0; i < lt->n; i++) {
        struct loop_timer_seen *s = &lt->v[i];
        if (s->timeout && !s->cancelled && !s->overdue && s->last_seen >= start &&
            s->when <= end && s->when >= start) {
            s->overdue = true;
            lt->timeouts_expired++;
            lt->run_expired++;
        }
    }
    lt->ring[lt->ring_head] = (struct loop_stretch){start, end};
    lt->ring_head = (lt->ring_head + 1) % LOOP_STRETCHES;
    if (lt->ring_n < LOOP_STRETCHES)
        lt->ring_n++;
    uint32_t expired = lt->run_expired;
    lt->run_expired = 0;
    if (!stall)
        return 0;
    lt->timeouts_expired_in_stalls += expired;
    return expired;
}

void loop_timers_derive(struct loop_timers *lt)
{
    size_t n = lt->ran < LOOP_LAGS_KEPT ? (size_t)lt->ran : LOOP_LAGS_KEPT;
    double *d = n ? malloc(n * sizeof *d) : NULL;
    lt->lag_mean_ms = lt->ran ? lt->lag_sum_ms / (double)lt->ran : 0;
    lt->lag_p50_ms = lt->lag_p99_ms = 0;
    if (d) {
        memcpy(d, lt->lags, n * sizeof *d);
        struct quantiles q = quantiles_of(d, n);
        lt->lag_p50_ms = q.p50;
        lt->lag_p99_ms = q.p99;
        free(d);
    }
}

void loop_timers_window_reset(struct loop_timers *lt)
{
    lt->ran = lt->late = 0;
    lt->lag_sum_ms = lt->lag_max_ms = 0;
    lt->timeouts_seen = lt->timeouts_expired = lt->timeouts_expired_in_stalls = 0;
    lt->timeouts_pending_max = lt->timeouts_pending;
    lt->heap_max = 0;
    lt->untracked = false;
    lt->lag_p50_ms = lt->lag_p99_ms = lt->lag_mean_ms = 0;
}

void loop_timers_free(struct loop_timers *lt)
{
    free(lt->v);
    free(lt->next);
    addrmap_free(&lt->index);
    memset(lt, 0, sizeof *lt);
}
