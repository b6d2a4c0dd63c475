/* Percentiles: one rule for every p50/p99 gilprobe reports, so that a p99
 * means the same in every section of a report. */
#ifndef GILPROBE_QUANTILES_H
#define GILPROBE_QUANTILES_H
#include <stddef.h>

struct quantiles {
    double p50, p99, max;
};

/* Index (0-based) of the nearest-rank p-quantile of n sorted values: the
 * smallest value with at least a share p of all values at or below it.
 * n > 0, 0 < p <= 1. */
size_t nearest_rank_index(size_t n, double p);

/* Sorts v (n values) in place and returns its p50, p99 and max; all zero
 * when n is 0. */
struct quantiles quantiles_of(double *v, size_t n);

#endif
