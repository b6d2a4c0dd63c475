/* Writes a fuzzer seed from a live interpreter: attaches like gilprobe
 * dump, records every byte the parsing code reads (through the struct
 * remote backend seam) while it takes a snapshot with stacks, and saves
 * those regions with the runtime's address and layout (format: image.h).
 * Usage: record_seed PID OUT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "python/pyobj.h"
#include "python/pyrt.h"
#include "python/snapshot.h"
#include "python/thread_names.h"

extern const struct py_layout py_generated_layouts[];
extern const size_t py_generated_layout_count;

struct rec {
    uint64_t addr;
    size_t len;
    uint8_t *data;
};

struct recorder {
    struct remote real;
    struct rec *r;
    size_t n, cap;
};

static int record(void *ctx, uint64_t addr, void *buf, size_t len)
{
    struct recorder *rc = ctx;
    int err = remote_read(&rc->real, addr, buf, len);
    if (err)
        return err;
    if (rc->n == rc->cap) {
        rc->cap = rc->cap ? rc->cap * 2 : 256;
        rc->r = realloc(rc->r, rc->cap * sizeof *rc->r);
        if (!rc->r)
            exit(1);
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        exit(1);
    memcpy(copy, buf, len);
    rc->r[rc->n++] = (struct rec){addr, len, copy};
    return 0;
}

static int by_addr(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void put(FILE *f, const void *p, size_t n)
{
    if (fwrite(p, 1, n, f) != n)
        exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: record_seed PID OUT\n");
        return 2;
    }
    struct pyrt rt;
    struct gp_error err = {0};
    if (pyrt_attach(atoi(argv[1]), &rt, &err) != GP_OK) {
        fprintf(stderr, "record_seed: %s\n", err.msg);
        return 1;
    }
    struct recorder rc = {0};
    remote_init(&rc.real, rt.pid);
    rt.mem.backend = record;
    rt.mem.backend_ctx = &rc;
    if (rt.layout.dbg_size > 0) { /* what the overlay reads */
        uint8_t table[4096];
        record(&rc, rt.runtime, table, (size_t)rt.layout.dbg_size);
    }
    struct pyobj_cache cache;
    pyobj_cache_init(&cache);
    struct thread_names names; /* what reading the names reads, too */
    thread_names_init(&names);
    thread_names_read(&rt, &cache, &names);
    struct snapshot s;
    if (snapshot_take(&rt, &cache, true, &s, &err) != GP_OK) {
        fprintf(stderr, "record_seed: %s\n", err.msg);
        return 1;
    }
    size_t frames = 0;
    for (size_t i = 0; i < s.nthreads; i++)
        frames += (size_t)s.threads[i].nframes;

    const struct py_layout *L = py_layout_for((int)(rt.version_hex >> 24),
                                              (int)((rt.version_hex >> 16) & 0xff), rt.free_threaded);
    uint8_t hdr[IMAGE_HEADER] = {0};
    hdr[0] = (uint8_t)(L ? L - py_generated_layouts : 0);
    hdr[1] = (uint8_t)((rt.code_type && rt.unicode_type ? 1 : 0) | (rt.debug_offsets ? 2 : 0));
    hdr[2] = (uint8_t)(rt.pthread_tid_off >= 0 ? rt.pthread_tid_off / 4 : 0);
    memcpy(hdr + 8, &rt.runtime, 8);
    memcpy(hdr + 16, &rt.code_type, 8);
    memcpy(hdr + 24, &rt.unicode_type, 8);
    FILE *f = fopen(argv[2], "wb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    put(f, hdr, sizeof hdr);
    /* Merge overlapping and touching reads; the first read of a byte wins. */
    qsort(rc.r, rc.n, sizeof *rc.r, by_addr);
    size_t regions = 0, bytes = 0;
    for (size_t i = 0; i < rc.n;) {
        uint64_t start = rc.r[i].addr, end = start + rc.r[i].len;
        size_t j = i + 1;
        while (j < rc.n && rc.r[j].addr <= end) {
            if (rc.r[j].addr + rc.r[j].len > end)
                end = rc.r[j].addr + rc.r[j].len;
            j++;
        }
        uint32_t len = (uint32_t)(end - start);
        uint8_t *buf = calloc(1, len);
        for (size_t k = j; k-- > i;) /* later reads first, so earlier overwrite */
            memcpy(buf + (rc.r[k].addr - start), rc.r[k].data, rc.r[k].len);
        put(f, &start, 8);
        put(f, &len, 4);
        put(f, buf, len);
        free(buf);
        regions++;
        bytes += len;
        i = j;
    }
    fclose(f);
    printf("{\"threads\": %zu, \"frames\": %zu, \"names\": %u, \"regions\": %zu, \"bytes\": %zu}\n",
           s.nthreads, frames, names.n, regions, bytes);
    thread_names_free(&names);
    return 0;
}
