#include "util/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool resize_array(void *pp, size_t elem, size_t n)
{
    if (n == 0 || elem == 0 || n > SIZE_MAX / elem)
        return false;
    /* Through memcpy: *pp is some T*, not a void*. */
    void *old;
    memcpy(&old, pp, sizeof old);
    void *nv = realloc(old, n * elem);
    if (!nv)
        return false;
    memcpy(pp, &nv, sizeof nv);
    return true;
}

size_t grow_for(void *pp, size_t elem, size_t n, size_t cap, size_t first)
{
    if (n < cap)
        return cap;
    size_t ncap = cap ? cap * 2 : first;
    if (ncap <= n || elem == 0 || ncap > SIZE_MAX / elem || ncap > UINT32_MAX)
        return 0;
    return resize_array(pp, elem, ncap) ? ncap : 0;
}
