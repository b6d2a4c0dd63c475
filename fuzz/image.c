#include "image.h"

#include <errno.h>
#include <string.h>

static uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

int image_parse(struct image *im, const uint8_t *data, size_t size)
{
    im->n = 0;
    if (size < IMAGE_HEADER)
        return 0;
    im->layout = data[0];
    im->flags = data[1];
    im->tid_off4 = data[2];
    im->runtime = le64(data + 8);
    im->code_type = le64(data + 16);
    im->unicode_type = le64(data + 24);
    size_t pos = IMAGE_HEADER;
    while (pos + 12 <= size && im->n < IMAGE_MAX_REGIONS) {
        struct image_region *r = &im->regions[im->n];
        r->addr = le64(data + pos);
        uint32_t len;
        memcpy(&len, data + pos + 8, 4);
        pos += 12;
        if (len > size - pos)
            len = (uint32_t)(size - pos);
        r->len = len;
        r->data = data + pos;
        pos += len;
        if (len && r->addr + len > r->addr)
            im->n++;
    }
    return 1;
}

/* Whole reads only, as process_vm_readv on one iovec; a read may span
 * regions that touch, as it may span adjacent mappings. */
int image_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct image *im = ctx;
    uint8_t *out = buf;
    while (len) {
        const struct image_region *hit = NULL;
        for (size_t i = 0; i < im->n && !hit; i++) {
            const struct image_region *r = &im->regions[i];
            if (addr >= r->addr && addr - r->addr < r->len)
                hit = r;
        }
        if (!hit)
            return -EFAULT;
        size_t avail = hit->len - (size_t)(addr - hit->addr);
        size_t k = len < avail ? len : avail;
        memcpy(out, hit->data + (addr - hit->addr), k);
        out += k;
        addr += k;
        len -= k;
    }
    return 0;
}
