/* A run's samples as a pprof profile (protobuf, gzipped): what `go tool
 * pprof`, Pyroscope, Parca and Grafana read. One pprof Sample per thread,
 * state and stack, valued in samples, GIL-held samples and GIL-wait
 * samples, labelled with the thread's name, its TID and the state; one
 * Function per code object, one Location per (code object, line). */
#include "report/pprof.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "profile.pb-c.h"
#include "util/addrmap.h"
#include "util/grow.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;
typedef Perftools__Profiles__Label Label;
typedef Perftools__Profiles__ValueType ValueType;

enum { V_SAMPLES, V_HELD, V_WAIT, NVALUES };

struct builder {
    char **strings;
    size_t nstrings, capstrings;
    struct addrmap string_index; /* FNV-1a hash -> index + 1 */
    Function *functions;
    size_t nfunctions, capfunctions;
    struct addrmap function_index; /* code object -> id */
    Location *locations; /* each with one Line of its own */
    size_t nlocations, caplocations;
    struct addrmap location_index; /* function id << 32 | line -> id */
    Sample *samples;
    size_t nsamples, capsamples;
    bool oom;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1;
}

/* The string table index of s (added when new). */
static int64_t str_id(struct builder *b, const char *s)
{
    uint64_t h = fnv(s);
    uintptr_t at = (uintptr_t)addrmap_get(&b->string_index, h);
    if (at && strcmp(b->strings[at - 1], s) == 0)
        return (int64_t)(at - 1);
    size_t ncap = grow_for(&b->strings, sizeof *b->strings, b->nstrings, b->capstrings, 256);
    char *copy = strdup(s);
    if (!ncap || !copy) {
        free(copy);
        b->oom = true;
        return 0;
    }
    b->capstrings = ncap;
    b->strings[b->nstrings] = copy;
    if (!at) /* (a colliding hash keeps the first: the new one is found by no lookup, once) */
        addrmap_put(&b->string_index, h, (void *)(uintptr_t)(b->nstrings + 1));
    return (int64_t)b->nstrings++;
}

static uint64_t function_id(struct builder *b, const struct code_info *code)
{
    uintptr_t id = (uintptr_t)addrmap_get(&b->function_index, (uint64_t)(uintptr_t)code);
    if (id)
        return id;
    size_t ncap = grow_for(&b->functions, sizeof *b->functions, b->nfunctions, b->capfunctions, 64);
    if (!ncap) {
        b->oom = true;
        return 0;
    }
    b->capfunctions = ncap;
    Function *f = &b->functions[b->nfunctions];
    perftools__profiles__function__init(f);
    f->id = b->nfunctions + 1;
    f->name = str_id(b, code->name ? code->name : "?");
    f->system_name = f->name;
    f->filename = str_id(b, code->filename ? code->filename : "?");
    f->start_line = code->firstlineno;
    b->nfunctions++;
    addrmap_put(&b->function_index, (uint64_t)(uintptr_t)code, (void *)(uintptr_t)f->id);
    return f->id;
}

static uint64_t location_id(struct builder *b, const struct py_frame *fr)
{
    uint64_t fid = function_id(b, fr->code);
    if (!fid)
        return 0;
    /* function ids are small and unique: (function, line) is the key */
    uint64_t key = fid << 32 | (uint32_t)(fr->line > 0 ? fr->line : 0);
    uintptr_t id = (uintptr_t)addrmap_get(&b->location_index, key);
    if (id)
        return id;
    size_t ncap = grow_for(&b->locations, sizeof *b->locations, b->nlocations, b->caplocations, 256);
    Line *ln = malloc(sizeof *ln);
    Line **lp = malloc(sizeof *lp);
    if (!ncap || !ln || !lp) {
        free(ln);
        free(lp);
        b->oom = true;
        return 0;
    }
    b->caplocations = ncap;
    Location *l = &b->locations[b->nlocations];
    perftools__profiles__location__init(l);
    perftools__profiles__line__init(ln);
    ln->function_id = fid;
    ln->line = fr->line > 0 ? fr->line : 0;
    lp[0] = ln;
    l->id = b->nlocations + 1;
    l->n_line = 1;
    l->line = lp;
    b->nlocations++;
    addrmap_put(&b->location_index, key, (void *)(uintptr_t)l->id);
    return l->id;
}

static void add_sample(struct builder *b, const struct thread_metrics *t, int kind,
                       const struct stack_entry *e, uint64_t count)
{
    size_t ncap = grow_for(&b->samples, sizeof *b->samples, b->nsamples, b->capsamples, 256);
    Label *labels = calloc(3, sizeof *labels);
    Label **lp = calloc(3, sizeof *lp);
    int64_t *values = calloc(NVALUES, sizeof *values);
    uint64_t *locs = calloc(e && e->nframes ? (size_t)e->nframes : 1, sizeof *locs);
    if (!ncap || !labels || !lp || !values || !locs) {
        free(labels), free(lp), free(values), free(locs);
        b->oom = true;
        return;
    }
    b->capsamples = ncap;
    Sample *s = &b->samples[b->nsamples++];
    perftools__profiles__sample__init(s);
    for (int f = 0; e && f < e->nframes; f++) /* innermost first, as pprof wants */
        locs[s->n_location_id++] = location_id(b, &e->frames[f]);
    s->location_id = locs;
    values[V_SAMPLES] = (int64_t)count;
    values[V_HELD] = kind == TS_GIL_HELD ? (int64_t)count : 0;
    values[V_WAIT] = kind == TS_GIL_WAIT ? (int64_t)count : 0;
    s->n_value = NVALUES;
    s->value = values;
    for (int i = 0; i < 3; i++) {
        perftools__profiles__label__init(&labels[i]);
        lp[i] = &labels[i];
    }
    labels[0].key = str_id(b, "thread");
    labels[0].str = str_id(b, t->display[0] ? t->display : t->name);
    labels[1].key = str_id(b, "state");
    labels[1].str = str_id(b, tstate_kind_key((enum tstate_kind)kind));
    labels[2].key = str_id(b, "tid");
    labels[2].num = t->tid;
    s->n_label = 3;
    s->label = lp;
}

static void builder_free(struct builder *b)
{
    for (size_t i = 0; i < b->nstrings; i++)
        free(b->strings[i]);
    free(b->strings);
    for (size_t i = 0; i < b->nlocations; i++) {
        free(b->locations[i].line[0]);
        free(b->locations[i].line);
    }
    free(b->locations);
    free(b->functions);
    for (size_t i = 0; i < b->nsamples; i++) {
        free(b->samples[i].location_id);
        free(b->samples[i].value);
        if (b->samples[i].label)
            free(b->samples[i].label[0]);
        free(b->samples[i].label);
    }
    free(b->samples);
    addrmap_free(&b->string_index);
    addrmap_free(&b->function_index);
    addrmap_free(&b->location_index);
}

/* Pointer arrays of the builder's flat arrays, as protobuf-c wants them. */
static void **pointers(void *flat, size_t n, size_t size)
{
    void **p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (char *)flat + i * size;
    return p;
}

static int write_gzip(const uint8_t *buf, size_t len, const char *path, struct gp_error *err)
{
    bool to_stdout = strcmp(path, "-") == 0;
    gzFile gz = to_stdout ? gzdopen(dup(STDOUT_FILENO), "wb") : gzopen(path, "wb");
    if (!gz) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write the pprof profile to %s (%s)",
                     to_stdout ? "standard output" : path, strerror(errno));
        return err->code;
    }
    bool ok = len == 0 || gzwrite(gz, buf, (unsigned)len) == (int)len;
    ok &= gzclose(gz) == Z_OK;
    if (!ok) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write the pprof profile to %s (disk full?)",
                     to_stdout ? "standard output" : path);
        return err->code;
    }
    return GP_OK;
}

int report_pprof_write(const struct run_metrics *m, const char *path, struct gp_error *err)
{
    struct builder b = {0};
    addrmap_init(&b.string_index);
    addrmap_init(&b.function_index);
    addrmap_init(&b.location_index);
    str_id(&b, ""); /* string_table[0] */
    Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
    ValueType types[NVALUES], period_type;
    ValueType *tp[NVALUES];
    static const char *const NAMES[NVALUES] = {"samples", "gil_held", "gil_wait"};
    for (int i = 0; i < NVALUES; i++) {
        perftools__profiles__value_type__init(&types[i]);
        types[i].type = str_id(&b, NAMES[i]);
        types[i].unit = str_id(&b, "count");
        tp[i] = &types[i];
    }
    perftools__profiles__value_type__init(&period_type);
    period_type.type = str_id(&b, "wall");
    period_type.unit = str_id(&b, "nanoseconds");
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        for (int kind = 0; kind < TS_COUNT; kind++)
            for (uint32_t j = 0; j < t->stacks[kind].n; j++)
                add_sample(&b, t, kind, stack_table_get(&m->stacks, t->stacks[kind].ids[j]),
                           t->stacks[kind].counts[j]);
    }
    p.n_sample_type = NVALUES;
    p.sample_type = tp;
    p.period_type = &period_type;
    p.period = m->sample_period_s > 0 ? (int64_t)(m->sample_period_s * 1e9) : 0;
    p.duration_nanos = (int64_t)(m->duration_s * 1e9);
    p.time_nanos = (int64_t)time(NULL) * 1000000000LL - p.duration_nanos;
    p.default_sample_type = types[V_SAMPLES].type;
    p.n_sample = b.nsamples;
    p.sample = (Sample **)pointers(b.samples, b.nsamples, sizeof *b.samples);
    p.n_location = b.nlocations;
    p.location = (Location **)pointers(b.locations, b.nlocations, sizeof *b.locations);
    p.n_function = b.nfunctions;
    p.function = (Function **)pointers(b.functions, b.nfunctions, sizeof *b.functions);
    p.n_string_table = b.nstrings;
    p.string_table = b.strings;
    int r = GP_OK;
    uint8_t *buf = NULL;
    if (b.oom || !p.sample || !p.location || !p.function ||
        !(buf = malloc(perftools__profiles__profile__get_packed_size(&p) + 1))) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory making the pprof profile");
        r = err->code;
    } else {
        size_t len = perftools__profiles__profile__pack(&p, buf);
        r = write_gzip(buf, len, path, err);
    }
    free(buf);
    free(p.sample);
    free(p.location);
    free(p.function);
    builder_free(&b);
    return r;
}
