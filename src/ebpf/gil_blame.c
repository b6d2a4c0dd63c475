/* The user side of GIL blame (bpf/gil_common.bpf.h): the kernel counts,
 * per (waiter, holder, holder's function), the GIL wait each waiter spent
 * behind each holder; here the counts of the sampled window (the end's
 * minus the start's) become each waiting thread's blame list. */
#ifndef GILPROBE_NO_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdlib.h>
#include <string.h>

#include "gil_probes.h"
#include "gil.skel.h"
#include "gil_futex.skel.h"
#include "util/grow.h"

static int pairs_fd(const struct gil_exact *g)
{
    return bpf_object__find_map_fd_by_name(g->obj, "blame_pairs");
}

/* The kernel's hold and lost-overlap counters (its .bss, mapped). */
static uint64_t counter(const struct gil_exact *g, bool lost)
{
    if (g->uprobes && g->uprobes->bss)
        return lost ? g->uprobes->bss->blame_lost : g->uprobes->bss->blame_seq;
    if (g->futex && g->futex->bss)
        return lost ? g->futex->bss->blame_lost : g->futex->bss->blame_seq;
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const struct blame_key *x = a, *y = b;
    if (x->waiter != y->waiter)
        return x->waiter < y->waiter ? -1 : 1;
    if (x->holder != y->holder)
        return x->holder < y->holder ? -1 : 1;
    return (x->code > y->code) - (x->code < y->code);
}

/* Every pair in the map, sorted by key; *n of them (NULL: none or OOM). */
static struct gil_blame_pair *read_pairs(int fd, size_t *n)
{
    struct gil_blame_pair *v = NULL;
    size_t cap = 0;
    *n = 0;
    struct blame_key k, next;
    void *prev = NULL;
    /* bounded by the map's size: a map being written can hand a walk the
     * same keys again, never more than it holds */
    for (size_t i = 0; i < BLAME_PAIRS && bpf_map_get_next_key(fd, prev, &next) == 0; i++) {
        k = next;
        prev = &k;
        struct blame_val val;
        if (bpf_map_lookup_elem(fd, &k, &val) != 0)
            continue;
        size_t ncap = grow_for(&v, sizeof *v, *n, cap, 64);
        if (!ncap)
            break;
        cap = ncap;
        v[(*n)++] = (struct gil_blame_pair){k, val};
    }
    if (*n > 1)
        qsort(v, *n, sizeof *v, key_cmp);
    return v;
}

void gil_blame_begin(struct gil_exact *g)
{
    if (!g->blame)
        return;
    free(g->blame_base);
    g->blame_base = read_pairs(pairs_fd(g), &g->nblame_base);
    g->blame_seq0 = counter(g, false);
}

void gil_blame_collect(struct gil_exact *g, struct pyrt *rt, struct pyobj_cache *c,
                       struct run_metrics *m)
{
    struct exact_gil *x = &m->exact;
    if (!g->blame || !x->valid)
        return;
    size_t n = 0;
    struct gil_blame_pair *now = read_pairs(pairs_fd(g), &n);
    struct addrmap index; /* tid -> exact thread index + 1 */
    addrmap_init(&index);
    for (uint32_t i = 0; i < x->nthreads; i++)
        addrmap_put(&index, (uint64_t)x->threads[i].tid, (void *)(uintptr_t)(i + 1));
    for (size_t i = 0; i < n; i++) {
        struct blame_val d = now[i].v;
        const struct gil_blame_pair *b =
            g->blame_base ? bsearch(&now[i].k, g->blame_base, g->nblame_base, sizeof *b, key_cmp)
                          : NULL;
        if (b) {
            d.ns = d.ns > b->v.ns ? d.ns - b->v.ns : 0;
            d.n = d.n > b->v.n ? d.n - b->v.n : 0;
        }
        uintptr_t t = (uintptr_t)addrmap_get(&index, now[i].k.waiter);
        if (!d.ns || !t)
            continue;
        uint64_t code = now[i].k.code;
        blame_add(&x->threads[t - 1].blame, (pid_t)now[i].k.holder, code,
                  code ? pyobj_code(rt, c, code) : NULL, d.n, (double)d.ns / 1e6);
    }
    addrmap_free(&index);
    free(now);
    for (uint32_t i = 0; i < x->nthreads; i++)
        blame_finish(&x->threads[i].blame, 0);
    x->blame_valid = true;
    x->blame_holds_per_s =
        x->window_s > 0 ? (double)(counter(g, false) - g->blame_seq0) / x->window_s : 0;
    x->blame_lost = counter(g, true);
}
#endif
