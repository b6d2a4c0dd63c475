#include "record/blame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/stacks.h"
#include "util/grow.h"

/* The least charged entry, folded into the "other holders" one when the
 * list is full (a new pair then lands there too). */
static struct blame_entry *fold_slot(struct blame_list *l)
{
    struct blame_entry *other = NULL, *least = NULL;
    for (uint32_t i = 0; i < l->n; i++) {
        struct blame_entry *e = &l->v[i];
        if (!e->holder_tid && !e->code_addr)
            other = e;
        else if (!least || e->count + e->ms < least->count + least->ms)
            least = e;
    }
    if (!other) {
        other = least; /* becomes the "other" entry */
        other->holder_tid = 0;
        other->code_addr = 0;
        other->code = NULL;
        return other;
    }
    if (least && least != other) {
        other->count += least->count;
        other->ms += least->ms;
        *least = l->v[--l->n];
    }
    return other;
}

void blame_add(struct blame_list *l, pid_t holder, uint64_t code_addr, struct code_info *code,
               uint64_t count, double ms)
{
    for (uint32_t i = 0; i < l->n; i++) {
        struct blame_entry *e = &l->v[i];
        if (e->holder_tid == holder && e->code_addr == code_addr) {
            e->count += count;
            e->ms += ms;
            return;
        }
    }
    if (l->n >= BLAME_MAX_ENTRIES) {
        struct blame_entry *o = fold_slot(l);
        o->count += count;
        o->ms += ms;
        return;
    }
    size_t ncap = grow_for(&l->v, sizeof *l->v, l->n, l->cap, 4);
    if (!ncap)
        return;
    l->cap = (uint32_t)ncap;
    l->v[l->n++] = (struct blame_entry){holder, code_addr, code, count, ms};
}

static int by_ms_desc(const void *a, const void *b)
{
    double x = ((const struct blame_entry *)a)->ms, y = ((const struct blame_entry *)b)->ms;
    return (x < y) - (x > y);
}

void blame_finish(struct blame_list *l, double ms_per_sample)
{
    l->total_ms = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        if (ms_per_sample > 0)
            l->v[i].ms = (double)l->v[i].count * ms_per_sample;
        l->total_ms += l->v[i].ms;
    }
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, by_ms_desc);
}

double blame_share(const struct blame_list *l, int (*pred)(const struct blame_entry *, void *),
                   void *arg)
{
    double sum = 0;
    for (uint32_t i = 0; i < l->n; i++)
        if (pred(&l->v[i], arg))
            sum += l->v[i].ms;
    return l->total_ms > 0 ? 100.0 * sum / l->total_ms : 0;
}

void blame_clear(struct blame_list *l)
{
    l->n = 0;
    l->total_ms = 0;
}

void blame_free(struct blame_list *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

void blame_site_text(const struct blame_entry *e, char *buf, size_t sz)
{
    if (!e->code) {
        if (sz)
            buf[0] = '\0';
        return;
    }
    struct py_frame f = {.code = e->code, .line = e->code->firstlineno};
    stack_frame_text(&f, buf, sz);
}
