/* libFuzzer target for everything that parses the target's memory: the
 * input is a memory image (see image.h) that struct remote reads through
 * its backend seam; the parsing code is gilprobe's own, unchanged.
 * Run: make fuzz (FUZZ_TIME=seconds); seeds in fuzz/corpus. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <stdio.h>

#include "analysis/figures.h"
#include "analysis/diagnose.h"
#include "report/dump.h"
#include "python/gil.h"
#include "image.h"
#include "record/metrics.h"
#include "target/proc.h"
#include "report/sample.h"
#include "sample/sampler.h"
#include "python/asyncio_debug.h"
#include "python/asyncio_links.h"
#include "python/coro_chain.h"
#include "report/tasks.h"
#include "python/asyncio_tasks.h"
#include "python/asyncio_count.h"
#include "python/asyncio_timers.h"
#include "record/loop_timers.h"
#include "python/linetable.h"
#include "python/pylayout.h"
#include "python/pyobj.h"
#include "python/pyrt.h"
#include "python/snapshot.h"
#include "python/stackwalk.h"
#include "python/thread_names.h"

extern const struct py_layout py_generated_layouts[];
extern const size_t py_generated_layout_count;

#define MAX_WALKS 64

static struct image im;

/* The sampler's path: walk, then walk again with the first walk as the
 * previous stack (prefetch, reuse), and resolve in a later epoch. */
static FILE *devnull(void)
{
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    return f;
}

/* The asyncio task readers: the registry (3.8-3.13: asyncio.tasks, its
 * WeakSet, set and weakrefs, Tasks), and 3.14+'s per-thread lists walked
 * with the table 3.14 publishes (the table itself is found in the
 * process's files, not in its memory). */
static void asyncio_like(struct pyrt *rt, struct pyobj_cache *c, const struct snapshot *s)
{
    struct asyncio_tasks tasks = {0};
    FILE *out = devnull();
    if (rt->version_hex < 0x030E0000) {
        asyncio_tasks_read(rt, c, NULL, 0, &tasks); /* chains and edges included */
        if (out) {
            report_tasks_text(out, &tasks);
            json_object_put(report_tasks_json(&tasks));
        }
        asyncio_tasks_free(&tasks);
        return;
    }
    static const struct asyncio_debug table314 = {168, 136, 96, 108, 109, 128, 152,
                                                  225864, 10880, 936, 864, 872, 880};
    struct asyncio_thread th[MAX_WALKS];
    size_t n = s->nthreads < MAX_WALKS ? s->nthreads : MAX_WALKS;
    for (size_t i = 0; i < n; i++)
        th[i] = (struct asyncio_thread){s->threads[i].tstate, s->threads[i].tid};
    tasks.v = calloc(ASYNCIO_TASKS_MAX, sizeof *tasks.v);
    if (tasks.v) {
        asyncio_debug_tasks(rt, c, &table314, th, n, pyrt_main_interp(rt), &tasks);
        asyncio_links_read(rt, c, &tasks);
        if (out) {
            report_tasks_text(out, &tasks);
            json_object_put(report_tasks_json(&tasks));
        }
    }
    asyncio_tasks_free(&tasks);
}

static void sampler_like(struct pyrt *rt, struct pyobj_cache *c, const struct snapshot *s)
{
    size_t n = s->nthreads < MAX_WALKS ? s->nthreads : MAX_WALKS;
    struct stack_walk first[MAX_WALKS], second[MAX_WALKS];
    struct remote_req reqs[MAX_WALKS * STACKWALK_PREFETCH_REQS];
    memset(first, 0, sizeof first);
    memset(second, 0, sizeof second);
    int32_t off = stackwalk_root_offset(&rt->layout);
    for (size_t i = 0; i < n; i++)
        if (off >= 0)
            remote_u64(&rt->mem, s->threads[i].tstate + (uint64_t)off, &first[i].root);
    stackwalk_run(rt, first, n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        second[i].root = first[i].root;
        second[i].prev = first[i].frames;
        second[i].nprev = first[i].nframes;
        second[i].prev_root = first[i].root;
        size_t got = stackwalk_prefetch_requests(rt, &second[i], 2, &reqs[k]);
        remote_readv(&rt->mem, &reqs[k], got);
        stackwalk_prefetch_done(&second[i], &reqs[k], got);
        (void)stackwalk_top_unchanged(rt, &second[i]);
        k += got;
    }
    stackwalk_run(rt, second, n);
    pyobj_cache_next_epoch(c);
    pyobj_cache_next_epoch(c);
    for (size_t i = 0; i < n; i++) {
        int nf = second[i].nframes;
        struct py_frame *out = calloc(nf ? (size_t)nf : 1, sizeof *out);
        bool partial = false;
        if (out)
            stackwalk_resolve(rt, c, second[i].frames, nf, out, nf, &partial);
        free(out);
        free(first[i].frames);
        free(second[i].frames);
    }
}

/* Both dump reports of what the snapshot read (the names, lines and
 * stacks in them came from the image). */
static void dump_reports(const struct pyrt *rt, const struct snapshot *s)
{
    FILE *out = devnull();
    struct dump d = {.pid = rt->pid, .rt = rt, .snap = *s, .nthreads = s->nthreads,
                     .os_threads = s->nthreads};
    snprintf(d.cmdline, sizeof d.cmdline, "fuzz");
    d.threads = calloc(s->nthreads ? s->nthreads : 1, sizeof *d.threads);
    if (!out || !d.threads) {
        free(d.threads);
        return;
    }
    for (size_t i = 0; i < s->nthreads; i++) {
        d.threads[i].py = &s->threads[i];
        d.threads[i].task.tid = s->threads[i].tid;
        d.threads[i].task.state = 'S';
        d.threads[i].is_main = i == 0;
        if (s->threads[i].holds_gil)
            d.gil_holder_tid = s->threads[i].tid;
    }
    report_dump_text(out, &d);
    report_dump_json(out, &d);
    free(d.threads);
}

/* Flag 4: the sampler itself for a millisecond (its refreshes, its
 * batched sample reads, the metrics), then both reports built from it.
 * Slow (a few ms an input), hence behind a flag the mutator can set. */
static void sampler_and_report(struct pyrt *rt, struct pyobj_cache *c)
{
    FILE *out = devnull();
    if (!out)
        return;
    struct run_metrics m;
    struct sampler_cost cost = {0};
    struct gp_error err = {0};
    metrics_init(&m);
    struct sampler_options so = {.duration_s = 0.001, .rate_hz = 4000, .no_bpf = true};
    if (sampler_run(rt, c, &so, &m, &cost, &err) == GP_OK && m.samples_taken) {
        struct diagnosis *diag = calloc(1, sizeof *diag);
        if (diag) {
            metrics_finish(&m);
            diagnose(&m, diag);
            struct sample_report rep = {.pid = rt->pid, .rt = rt, .m = &m, .cost = &cost,
                                        .diag = diag};
            json_object *doc = report_sample_doc(&rep);
            if (doc)
                fputs(json_object_to_json_string(doc), out);
            json_object_put(doc);
            report_sample_text(out, &rep);
            free(diag);
        }
    }
    metrics_free(&m);
}

static void raw_decoders(const struct pyrt *rt, const uint8_t *data, size_t size)
{
    static const long offsets[] = {-1, 0, 1, 2, 7, 31, 100, 1000, 1L << 20};
    char text[64], back[40];
    size_t tn = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, tn);
    text[tn] = '\0';
    pyrt_format_version(pyrt_parse_version(text), back, sizeof back);
    for (int f = 0; f < 4; f++)
        for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
            (void)linetable_line(f, data, size, 1, offsets[i]);
    if (rt->layout.gil_size > 0 && rt->layout.gil_size <= GIL_READ_MAX) {
        uint8_t buf[GIL_READ_MAX] = {0};
        memcpy(buf, data, size < GIL_READ_MAX ? size : GIL_READ_MAX);
        struct gil_state g;
        uint64_t cur = 0;
        if (size >= 8)
            memcpy(&cur, data, 8);
        gil_decode(rt, 0x1000, buf, cur, &g);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pyrt rt;
    memset(&rt, 0, sizeof rt);
    if (!image_parse(&im, data, size)) {
        rt.layout = py_generated_layouts[size % py_generated_layout_count];
        raw_decoders(&rt, data, size);
        return 0;
    }
    rt.pid = rt.ns_pid = getpid();
    remote_init(&rt.mem, rt.pid);
    rt.mem.backend = image_read;
    rt.mem.backend_ctx = &im;
    rt.layout = py_generated_layouts[im.layout % py_generated_layout_count];
    rt.version_hex = (unsigned)rt.layout.version_hex;
    rt.runtime = im.runtime;
    if (im.flags & 1) {
        rt.code_type = im.code_type;
        rt.unicode_type = im.unicode_type;
    }
    if (im.flags & 2)
        pyrt_overlay_debug_offsets(&rt);
    rt.pthread_tid_off = -1;
    rt.pthread_tid_cands[0] = im.tid_off4 * 4;
    rt.pthread_tid_ncands = 1;
    rt.start_time = proc_start_time(rt.pid);
    snprintf(rt.version, sizeof rt.version, "%s", rt.layout.header_version);
    rt.version_source = "fuzz image";

    struct pyobj_cache cache;
    pyobj_cache_init(&cache);
    struct snapshot s;
    struct gp_error err = {0};
    struct thread_names names;
    thread_names_init(&names);
    thread_names_read(&rt, &cache, &names); /* sys.modules, threading._active, instance dicts */
    thread_names_free(&names);
    if (snapshot_take(&rt, &cache, true, &s, &err) == GP_OK) {
        asyncio_like(&rt, &cache, &s);
        sampler_like(&rt, &cache, &s);
        dump_reports(&rt, &s);
        snapshot_free(&s);
    }
    /* Every region's start as a str, a code object, a coroutine and an
     * event loop (its timer heap, fed to the timer tracker), directly; and
     * the task count. */
    struct coro_chain chain;
    struct asyncio_timers *timers = asyncio_timers_open(&rt, &cache);
    struct asyncio_count *counter = asyncio_count_open(&rt, &cache);
    static struct asyncio_timer heap[ASYNCIO_TIMERS_MAX];
    struct loop_timers tracked = {0};
    uint64_t total;
    (void)asyncio_count_tasks(counter, 0, 0, &total);
    for (size_t i = 0; i < im.n && i < 256; i++) {
        (void)pyobj_str(&rt, &cache, im.regions[i].addr);
        coro_chain_read(&rt, &cache, im.regions[i].addr, &chain);
        int nt = asyncio_timers_read(timers, im.regions[i].addr, heap, ASYNCIO_TIMERS_MAX, &total);
        if (nt >= 0)
            loop_timers_scan(&tracked, (double)i, heap, (uint32_t)nt, total, 0, i & 1, 0);
        (void)asyncio_count_tasks(counter, im.regions[i].addr, 0, &total);
        struct code_info *ci = pyobj_code(&rt, &cache, im.regions[i].addr);
        if (ci) {
            (void)pyobj_code_line(&rt, ci, -1);
            (void)pyobj_code_line(&rt, ci, 3);
            (void)pyobj_code_line(&rt, ci, 3);
        }
    }
    loop_timers_derive(&tracked);
    loop_timers_free(&tracked);
    asyncio_timers_close(timers);
    asyncio_count_close(counter);
    if (im.flags & 4)
        sampler_and_report(&rt, &cache);
    pyobj_cache_free(&cache);
    if (im.n)
        raw_decoders(&rt, im.regions[0].data, im.regions[0].len);
    return 0;
}
