/* Replays a memory image (format: image.h) the way gilprobe reads a live
 * process: the version from the _Py_DebugOffsets block at the image's
 * runtime address, the layout picked as for a live process
 * (pyrt_choose_layout: a 3.13+ version without a generated table is read
 * through that block alone), then a snapshot with stacks, printed one
 * thread per line. The tests replay a 3.15 image as recorded, then with
 * its version raised to one gilprobe has never seen, then with a
 * corrupted block. Usage: replay_image IMAGE. Exit: 0, or gilprobe's code
 * with its one-line error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "python/pyobj.h"
#include "python/pyrt.h"
#include "python/snapshot.h"
#include "python/thread_names.h"

static struct image im;

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *data = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *grown = realloc(data, cap);
            if (!grown) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = grown;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *size = n;
    return data;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: replay_image IMAGE\n");
        return 2;
    }
    size_t size = 0;
    uint8_t *data = slurp(argv[1], &size);
    if (!data || !image_parse(&im, data, size)) {
        fprintf(stderr, "replay_image: cannot read an image from %s\n", argv[1]);
        return 2;
    }
    struct pyrt rt;
    memset(&rt, 0, sizeof rt);
    rt.pid = rt.ns_pid = getpid();
    rt.pthread_tid_off = -1;
    remote_init(&rt.mem, rt.pid);
    rt.mem.backend = image_read;
    rt.mem.backend_ctx = &im;
    rt.runtime = im.runtime;
    if (im.flags & 1) {
        rt.code_type = im.code_type;
        rt.unicode_type = im.unicode_type;
    }
    snprintf(rt.binary, sizeof rt.binary, "%s", argv[1]);
    uint8_t head[24];
    if (remote_read(&rt.mem, rt.runtime, head, sizeof head) != 0 ||
        memcmp(head, "xdebugpy", 8) != 0) {
        fprintf(stderr, "replay_image: no _Py_DebugOffsets block in %s\n", argv[1]);
        return 2;
    }
    uint64_t v, ft;
    memcpy(&v, head + 8, 8);
    memcpy(&ft, head + 16, 8);
    rt.version_hex = (unsigned)v;
    rt.free_threaded = ft != 0;
    rt.version_source = "_Py_DebugOffsets";
    struct gp_error err = {0};
    if (pyrt_choose_layout(&rt, 0, &err) != GP_OK) {
        fprintf(stderr, "gilprobe: %s\n", err.msg);
        return err.code;
    }
    struct pyobj_cache cache;
    pyobj_cache_init(&cache);
    struct snapshot s;
    if (snapshot_take(&rt, &cache, true, &s, &err) != GP_OK) {
        fprintf(stderr, "gilprobe: %s\n", err.msg);
        return err.code;
    }
    struct thread_names names;
    thread_names_init(&names);
    thread_names_read(&rt, &cache, &names);
    printf("python %s layout %s\n", rt.version,
           rt.unknown_version ? "_Py_DebugOffsets-only" : "generated");
    printf("gil locked=%d holder=0x%llx\n", s.gil.locked, (unsigned long long)s.gil.holder);
    for (size_t i = 0; i < s.nthreads; i++) {
        const struct py_thread *t = &s.threads[i];
        const char *why;
        const char *name = thread_names_find(&names, t->pthread, &why);
        printf("thread 0x%llx gil=%d name=%s", (unsigned long long)t->pthread,
               t->holds_gil ? 1 : 0, name ? name : "-");
        for (int k = 0; k < t->nframes; k++)
            printf(" | %s (%s:%d)", t->frames[k].code->name,
                   t->frames[k].code->filename, t->frames[k].line);
        printf("\n");
    }
    thread_names_free(&names);
    snapshot_free(&s);
    pyobj_cache_free(&cache);
    free(data);
    return 0;
}
