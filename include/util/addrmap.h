/* Open-addressing map from a remote address to a pointer: caches of code
 * objects and strings, and visited-sets that catch cycles in remote lists. */
#ifndef GILPROBE_ADDRMAP_H
#define GILPROBE_ADDRMAP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct addrmap {
    uint64_t *keys;  /* 0 = empty slot (address 0 is never a valid key) */
    void **vals;
    size_t cap, len;
};

void addrmap_init(struct addrmap *m);
void addrmap_free(struct addrmap *m);
void addrmap_clear(struct addrmap *m);
void *addrmap_get(const struct addrmap *m, uint64_t key);
/* false on out-of-memory. Replaces an existing value. */
bool addrmap_put(struct addrmap *m, uint64_t key, void *val);
/* Adds key to a set; false if it was already there (or on OOM). */
bool addrmap_add_new(struct addrmap *m, uint64_t key);

#endif
