#include "util/quantiles.h"

#include <stdlib.h>

size_t nearest_rank_index(size_t n, double p)
{
    /* The small epsilon keeps p * n that is an integer in exact arithmetic
     * (0.99 * 100) from rounding up to the next rank. */
    size_t rank = (size_t)(p * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return rank - 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct quantiles quantiles_of(double *v, size_t n)
{
    struct quantiles q = {0};
    if (!v || !n)
        return q;
    qsort(v, n, sizeof *v, cmp_double);
    q.p50 = v[nearest_rank_index(n, 0.50)];
    q.p99 = v[nearest_rank_index(n, 0.99)];
    q.max = v[n - 1];
    return q;
}
