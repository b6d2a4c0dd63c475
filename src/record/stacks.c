#include "record/stacks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"

static uint64_t hash_frames(const struct py_frame *f, int n)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)(uintptr_t)f[i].code;
        h *= 1099511628211ULL;
        h ^= (uint64_t)(uint32_t)f[i].line;
        h *= 1099511628211ULL;
    }
    return h;
}

static bool same_frames(const struct py_frame *a, const struct py_frame *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i].code != b[i].code || a[i].line != b[i].line)
            return false;
    return true;
}

void stack_table_init(struct stack_table *t)
{
    memset(t, 0, sizeof *t);
    t->v = calloc(1, sizeof *t->v);
    t->n = t->cap = t->v ? 1 : 0;
}

void stack_table_free(struct stack_table *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        free(t->v[i].frames);
    free(t->v);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static bool rehash(struct stack_table *t)
{
    uint32_t nslots = t->nslots ? t->nslots * 2 : 256;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return false;
    for (uint32_t id = 1; id < t->n; id++) {
        uint32_t s = (uint32_t)t->v[id].hash & (nslots - 1);
        while (slots[s])
            s = (s + 1) & (nslots - 1);
        slots[s] = id + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return true;
}

uint32_t stack_table_intern(struct stack_table *t, const struct py_frame *frames, int n)
{
    if (n <= 0 || !t->v)
        return STACK_NONE;
    uint64_t h = hash_frames(frames, n);
    if (t->nslots) {
        for (uint32_t s = (uint32_t)h & (t->nslots - 1); t->slots[s];
             s = (s + 1) & (t->nslots - 1)) {
            const struct stack_entry *e = &t->v[t->slots[s] - 1];
            if (e->hash == h && e->nframes == n && same_frames(e->frames, frames, n))
                return t->slots[s] - 1;
        }
    }
    if ((t->n + 1) * 2 > t->nslots && !rehash(t))
        return STACK_NONE;
    if (t->n == t->cap) {
        uint32_t ncap = t->cap * 2;
        struct stack_entry *nv = realloc(t->v, ncap * sizeof *nv);
        if (!nv)
            return STACK_NONE;
        t->v = nv;
        t->cap = ncap;
    }
    struct py_frame *copy = malloc((size_t)n * sizeof *copy);
    if (!copy)
        return STACK_NONE;
    memcpy(copy, frames, (size_t)n * sizeof *copy);
    uint32_t id = t->n++;
    t->v[id] = (struct stack_entry){h, n, copy};
    uint32_t s = (uint32_t)h & (t->nslots - 1);
    while (t->slots[s])
        s = (s + 1) & (t->nslots - 1);
    t->slots[s] = id + 1;
    return id;
}

const struct stack_entry *stack_table_get(const struct stack_table *t, uint32_t id)
{
    return id < t->n ? &t->v[id] : NULL;
}

int stack_python_top(const struct stack_entry *e)
{
    for (int i = 0; e && i < e->nframes; i++)
        if (!e->frames[i].code->native)
            return i;
    return -1;
}

int stack_site_frames(const struct stack_entry *e, struct py_frame out[2])
{
    if (!e || !e->nframes)
        return 0;
    int py = stack_python_top(e);
    out[0] = e->frames[0];
    if (py <= 0)
        return 1;
    out[1] = e->frames[py];
    return 2;
}

void stack_counts_add(struct stack_counts *c, uint32_t id, uint64_t k)
{
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->ids[i] == id) {
            c->counts[i] += k;
            return;
        }
    }
    if (c->n == c->cap) {
        size_t ncap = grow_for(&c->ids, sizeof *c->ids, c->n, c->cap, 4);
        if (!ncap || grow_for(&c->counts, sizeof *c->counts, c->n, c->cap, 4) != ncap)
            return;
        c->cap = (uint32_t)ncap;
    }
    c->ids[c->n] = id;
    c->counts[c->n++] = k;
}

void stack_counts_free(struct stack_counts *c)
{
    free(c->ids);
    free(c->counts);
    memset(c, 0, sizeof *c);
}

static const struct stack_counts *g_sort_counts;

static int by_count_desc(const void *a, const void *b)
{
    uint64_t x = g_sort_counts->counts[*(const uint32_t *)a];
    uint64_t y = g_sort_counts->counts[*(const uint32_t *)b];
    return (x < y) - (x > y);
}

uint32_t *stack_counts_ranked(const struct stack_counts *c)
{
    uint32_t *idx = malloc((c->n ? c->n : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    for (uint32_t i = 0; i < c->n; i++)
        idx[i] = i;
    g_sort_counts = c;
    qsort(idx, c->n, sizeof *idx, by_count_desc);
    return idx;
}

bool code_file_ends_with(const char *path, const char *suffix)
{
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && strcmp(path + n - k, suffix) == 0;
}

const char *code_bare_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

uint8_t *stack_kind_slot(uint8_t **kind, uint32_t *cap, uint32_t stack)
{
    if (stack >= *cap) {
        uint32_t ncap = stack + 1024;
        uint8_t *nk = realloc(*kind, ncap);
        if (!nk)
            return NULL;
        memset(nk + *cap, 0, ncap - *cap);
        *kind = nk;
        *cap = ncap;
    }
    return &(*kind)[stack];
}

void stack_frame_text(const struct py_frame *f, char *buf, size_t sz)
{
    if (f->line >= 0)
        snprintf(buf, sz, "%s (%s:%d)", f->code->name, f->code->filename, f->line);
    else
        snprintf(buf, sz, "%s (%s)", f->code->name, f->code->filename);
}

void stack_site_text(const struct stack_entry *e, char *buf, size_t sz)
{
    if (!e || !e->nframes) {
        snprintf(buf, sz, "(no Python frame)");
        return;
    }
    int py = stack_python_top(e);
    stack_frame_text(&e->frames[py > 0 ? py : 0], buf, sz);
    if (py > 0) {
        size_t used = strlen(buf);
        if (used + 8 < sz) {
            memcpy(buf + used, ", in C: ", 9);
            stack_frame_text(&e->frames[0], buf + used + 8, sz - used - 8);
        }
    }
}
