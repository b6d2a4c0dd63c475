/* Reading a CPython that has no generated table (a minor newer than this
 * gilprobe, or one withheld for a test) through the _Py_DebugOffsets block
 * every 3.13+ process carries at the start of _PyRuntime.
 *
 * The block's own field positions are those of the newest generated
 * layout of the same build kind (its sections have kept their order since
 * 3.13); every value is validated against the sizes the block itself
 * states, so a block laid out otherwise, or corrupted, is refused rather
 * than followed. What the block does not publish (the GIL's switch number
 * and interval, the first traceable instruction, the main thread's
 * pthread) stays absent (-1): reported as not measured, never guessed.
 * The frame model, line-table format and frame-owner values are those of
 * the newest known version: the block publishes no format, and a walk
 * that meets another format finds no valid code object and stops. */
#ifndef GILPROBE_DEBUG_OFFSETS_H
#define GILPROBE_DEBUG_OFFSETS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "python/pylayout.h"

#define DEBUG_OFFSETS_COOKIE "xdebugpy"
/* The first version that carries the block. */
#define DEBUG_OFFSETS_MIN_VERSION 0x030D0000u

/* The generated layout whose block positions an unknown version is read
 * with: the newest of that build kind, or NULL (none carries a block). */
const struct py_layout *debug_offsets_template(bool free_threaded);

/* Bytes of the block to read from _PyRuntime for debug_offsets_layout. */
size_t debug_offsets_read_size(bool free_threaded);

/* Builds the layout of `version_hex` from its block (`table`, `len` bytes
 * from the start of _PyRuntime). 0, or -1 with `why` naming the field that
 * failed validation and how. */
int debug_offsets_layout(const uint8_t *table, size_t len, unsigned version_hex,
                         bool free_threaded, struct py_layout *out, char *why, size_t whysz);

#endif
