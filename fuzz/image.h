/* A synthetic memory image for the fuzzer and its seeds: (address, bytes)
 * regions that struct remote reads through its backend seam instead of a
 * live process. Reads outside every region fail with EFAULT.
 *
 * Seed file format (little-endian), also the fuzzer's input:
 *   header (IMAGE_HEADER bytes):
 *     0  u8  layout index (mod the number of generated layouts)
 *     1  u8  flags: 1 type addresses known, 2 overlay _Py_DebugOffsets
 *     2  u8  pthread tid offset / 4 (<=3.10), 3 reserved
 *     4  u32 reserved
 *     8  u64 &_PyRuntime   16 u64 &PyCode_Type   24 u64 &PyUnicode_Type
 *   then regions until the end: u64 addr, u32 len, len bytes. */
#ifndef GILPROBE_FUZZ_IMAGE_H
#define GILPROBE_FUZZ_IMAGE_H
#include <stddef.h>
#include <stdint.h>

#define IMAGE_HEADER 32
#define IMAGE_MAX_REGIONS 4096

struct image_region {
    uint64_t addr;
    uint32_t len;
    const uint8_t *data;
};

struct image {
    uint8_t layout, flags, tid_off4;
    uint64_t runtime, code_type, unicode_type;
    struct image_region regions[IMAGE_MAX_REGIONS];
    size_t n;
};

/* Parses a seed (regions point into data); false when shorter than a header. */
int image_parse(struct image *im, const uint8_t *data, size_t size);
/* The struct remote backend: ctx is a struct image. */
int image_read(void *ctx, uint64_t addr, void *buf, size_t len);

#endif
