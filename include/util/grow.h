/* Growable arrays: one doubling rule for every list the tool keeps. */
#ifndef GILPROBE_GROW_H
#define GILPROBE_GROW_H
#include <stdbool.h>
#include <stddef.h>

/* Room at index n of the array *pp points to (cap elements of elem bytes,
 * n <= cap): doubles it when full, to `first` elements when empty. Returns
 * the capacity now; 0 when memory ran out (the array is as it was). */
size_t grow_for(void *pp, size_t elem, size_t n, size_t cap, size_t first);
/* Resizes the array *pp points to to n elements of elem bytes; false when
 * memory ran out (the array is as it was). */
bool resize_array(void *pp, size_t elem, size_t n);

#endif
