#include "util/addrmap.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

void addrmap_init(struct addrmap *m)
{
    memset(m, 0, sizeof *m);
}

void addrmap_free(struct addrmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

void addrmap_clear(struct addrmap *m)
{
    if (m->cap) {
        memset(m->keys, 0, m->cap * sizeof *m->keys);
        memset(m->vals, 0, m->cap * sizeof *m->vals);
    }
    m->len = 0;
}

void *addrmap_get(const struct addrmap *m, uint64_t key)
{
    if (!m->cap || key == 0)
        return NULL;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == 0)
            return NULL;
    }
}

static bool grow(struct addrmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    uint64_t *nk = calloc(ncap, sizeof *nk);
    void **nv = calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = slot_of(m->keys[i], ncap);
        while (nk[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return true;
}

/* Returns the slot holding key, inserting it if needed; -1 on OOM. */
static long find_or_insert(struct addrmap *m, uint64_t key, bool *existed)
{
    if ((m->len + 1) * 4 > m->cap * 3 && !grow(m))
        return -1;
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    *existed = m->keys[i] == key;
    if (!*existed) {
        m->keys[i] = key;
        m->vals[i] = NULL;
        m->len++;
    }
    return (long)i;
}

bool addrmap_put(struct addrmap *m, uint64_t key, void *val)
{
    bool existed;
    if (key == 0)
        return false;
    long i = find_or_insert(m, key, &existed);
    if (i < 0)
        return false;
    m->vals[i] = val;
    return true;
}

bool addrmap_add_new(struct addrmap *m, uint64_t key)
{
    bool existed;
    if (key == 0)
        return false;
    long i = find_or_insert(m, key, &existed);
    return i >= 0 && !existed;
}
