#include "report/stack_exports.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/common.h"
#include "util/version.h"

#define SPEEDSCOPE_SCHEMA "https://www.speedscope.app/file-format-schema.json"
#define SPEEDSCOPE_EXPORTER "gilprobe " GILPROBE_VERSION

struct stacks_out {
    const struct run_metrics *m;
    unsigned mask;
    pid_t pid;
};

static bool selected(unsigned mask, int kind)
{
    return mask == 0 || (mask & (1u << kind));
}

/* "gil_wait" -> "gil-wait": the spelling the usage message offers. */
static void dashed(const char *key, char *buf, size_t sz)
{
    snprintf(buf, sz, "%s", key);
    for (char *p = buf; *p; p++)
        if (*p == '_')
            *p = '-';
}

static int state_by_name(const char *name, size_t len)
{
    char want[32];
    if (len == 0 || len >= sizeof want)
        return -1;
    for (size_t i = 0; i < len; i++)
        want[i] = name[i] == '-' ? '_' : name[i];
    want[len] = '\0';
    for (int k = 0; k < TS_COUNT; k++)
        if (strcmp(want, tstate_kind_key(k)) == 0)
            return k;
    return -1;
}

int report_stacks_parse_states(const char *list, unsigned *mask, char *msg, size_t sz)
{
    unsigned add = 0;
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        int k = state_by_name(p, len);
        if (k < 0) {
            char names[160] = "", one[32];
            for (int j = 0; j < TS_COUNT; j++) {
                dashed(tstate_kind_key(j), one, sizeof one);
                size_t used = strlen(names);
                snprintf(names + used, sizeof names - used, "%s%s",
                         j == 0 ? "" : j == TS_COUNT - 1 ? " or " : ", ", one);
            }
            snprintf(msg, sz, "--state wants %s (comma-separated, '_' or '-'), not '%.*s'", names,
                     (int)(len > 64 ? 64 : len), p);
            return -1;
        }
        add |= 1u << k;
        p += len;
        if (*p == '\0')
            break;
    }
    *mask |= add;
    return 0;
}

/* flamegraph.pl and inferno split a line into frames at ';' and take the
 * count after its last space: a ';' or a line break inside a name would
 * shift every frame after it, so they become '_'. Spaces are safe. */
static void put_clean(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc(*s == ';' || *s == '\n' || *s == '\r' ? '_' : *s, out);
}

static void put_frame(FILE *out, const struct py_frame *f)
{
    put_clean(out, f->code->name);
    fputs(" (", out);
    put_clean(out, f->code->filename);
    if (f->line >= 0)
        fprintf(out, ":%d", f->line);
    fputc(')', out);
}

/* The thread and the state are the two outermost frames, so each thread
 * gets its own tower, split by state, in any flame graph of the file. */
static void as_collapsed(FILE *out, const void *arg)
{
    const struct stacks_out *o = arg;
    const struct run_metrics *m = o->m;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        for (int kind = 0; kind < TS_COUNT; kind++) {
            const struct stack_counts *c = &t->stacks[kind];
            for (uint32_t j = 0; selected(o->mask, kind) && j < c->n; j++) {
                const struct stack_entry *e = stack_table_get(&m->stacks, c->ids[j]);
                fputs("thread ", out);
                put_clean(out, t->display);
                fprintf(out, " (%d);[%s]", (int)t->tid, tstate_kind_key(kind));
                for (int f = e ? e->nframes - 1 : -1; f >= 0; f--) {
                    fputc(';', out);
                    put_frame(out, &e->frames[f]);
                }
                fprintf(out, " %" PRIu64 "\n", c->counts[j]);
            }
        }
    }
}

/* speedscope frames are shared by index; a Python frame is its code
 * object and line (the code objects are interned by the pyobj cache). */
struct frame_key {
    uintptr_t code;
    int line;
};

static int frame_key_cmp(const void *a, const void *b)
{
    const struct frame_key *x = a, *y = b;
    if (x->code != y->code)
        return x->code < y->code ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

struct frame_index {
    struct frame_key *keys; /* sorted, unique; frame index = base + position */
    size_t n;
    int base;               /* the state frames come first */
    int state[TS_COUNT];    /* frame index of each selected state */
};

static bool thread_selected(const struct thread_metrics *t, unsigned mask)
{
    for (int kind = 0; kind < TS_COUNT; kind++)
        if (selected(mask, kind) && t->stacks[kind].n)
            return true;
    return false;
}

/* Only the frames of stacks that are written: a --state filter should not
 * leave the file full of frames nothing refers to. */
static int frame_index_build(const struct stacks_out *o, struct frame_index *fi)
{
    const struct run_metrics *m = o->m;
    memset(fi, 0, sizeof *fi);
    for (int kind = 0; kind < TS_COUNT; kind++)
        fi->state[kind] = selected(o->mask, kind) ? fi->base++ : -1;
    bool *used = calloc(m->stacks.n ? m->stacks.n : 1, sizeof *used);
    if (!used)
        return -1;
    size_t total = 0;
    for (uint32_t i = 0; i < m->nthreads; i++)
        for (int kind = 0; kind < TS_COUNT; kind++)
            for (uint32_t j = 0; selected(o->mask, kind) && j < m->threads[i].stacks[kind].n; j++) {
                uint32_t id = m->threads[i].stacks[kind].ids[j];
                const struct stack_entry *e = stack_table_get(&m->stacks, id);
                if (e && !used[id])
                    total += (size_t)e->nframes;
                if (e)
                    used[id] = true;
            }
    fi->keys = malloc((total ? total : 1) * sizeof *fi->keys);
    if (!fi->keys) {
        free(used);
        return -1;
    }
    for (uint32_t id = 0; id < m->stacks.n; id++) {
        const struct stack_entry *e = stack_table_get(&m->stacks, id);
        for (int f = 0; used[id] && f < e->nframes; f++)
            fi->keys[fi->n++] = (struct frame_key){(uintptr_t)e->frames[f].code, e->frames[f].line};
    }
    free(used);
    qsort(fi->keys, fi->n, sizeof *fi->keys, frame_key_cmp);
    size_t u = 0;
    for (size_t i = 0; i < fi->n; i++)
        if (u == 0 || frame_key_cmp(&fi->keys[u - 1], &fi->keys[i]) != 0)
            fi->keys[u++] = fi->keys[i];
    fi->n = u;
    return 0;
}

static int frame_index_of(const struct frame_index *fi, const struct py_frame *f)
{
    struct frame_key k = {(uintptr_t)f->code, f->line};
    const struct frame_key *hit = bsearch(&k, fi->keys, fi->n, sizeof k, frame_key_cmp);
    return hit ? fi->base + (int)(hit - fi->keys) : -1;
}

static json_object *shared_frames_json(const struct frame_index *fi)
{
    json_object *frames = json_object_new_array();
    for (int kind = 0; kind < TS_COUNT; kind++) {
        if (fi->state[kind] < 0)
            continue;
        char name[40];
        snprintf(name, sizeof name, "[%s]", tstate_kind_key(kind));
        json_object *jf = json_object_new_object();
        json_object_object_add(jf, "name", json_object_new_string(name));
        json_object_array_add(frames, jf);
    }
    for (size_t i = 0; i < fi->n; i++) {
        const struct code_info *code = (const struct code_info *)fi->keys[i].code;
        json_object *jf = json_object_new_object();
        json_object_object_add(jf, "name", json_object_new_string(code->name));
        json_object_object_add(jf, "file", json_object_new_string(code->filename));
        if (fi->keys[i].line >= 0)
            json_object_object_add(jf, "line", json_object_new_int(fi->keys[i].line));
        json_object_array_add(frames, jf);
    }
    return frames;
}

/* json-c prints doubles with 17 digits (0.207 as 0.20700000000000002);
 * nine are exact enough for a weight and keep long runs' files small. */
static json_object *seconds_json(double s)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", s);
    return json_object_new_double_s(s, buf);
}

/* One sampled profile per thread; each distinct (state, stack) is one
 * sample weighted by how long it was seen, which speedscope sums the same
 * as the individual samples. */
static json_object *profile_json(const struct stacks_out *o, const struct frame_index *fi,
                                 const struct thread_metrics *t)
{
    const struct run_metrics *m = o->m;
    json_object *samples = json_object_new_array(), *weights = json_object_new_array();
    double end = 0;
    for (int kind = 0; kind < TS_COUNT; kind++) {
        const struct stack_counts *c = &t->stacks[kind];
        for (uint32_t j = 0; selected(o->mask, kind) && j < c->n; j++) {
            const struct stack_entry *e = stack_table_get(&m->stacks, c->ids[j]);
            json_object *s = json_object_new_array();
            json_object_array_add(s, json_object_new_int(fi->state[kind]));
            for (int f = e ? e->nframes - 1 : -1; f >= 0; f--) {
                int idx = frame_index_of(fi, &e->frames[f]);
                if (idx >= 0)
                    json_object_array_add(s, json_object_new_int(idx));
            }
            double w = (double)c->counts[j] * m->sample_period_s;
            end += w;
            json_object_array_add(samples, s);
            json_object_array_add(weights, seconds_json(w));
        }
    }
    char name[sizeof t->display + 16];
    snprintf(name, sizeof name, "%s (%d)", t->display, (int)t->tid);
    json_object *p = json_object_new_object();
    json_object_object_add(p, "type", json_object_new_string("sampled"));
    json_object_object_add(p, "name", json_object_new_string(name));
    json_object_object_add(p, "unit", json_object_new_string("seconds"));
    json_object_object_add(p, "startValue", json_object_new_int(0));
    json_object_object_add(p, "endValue", seconds_json(end));
    json_object_object_add(p, "samples", samples);
    json_object_object_add(p, "weights", weights);
    return p;
}

static int as_speedscope(FILE *out, const void *arg)
{
    const struct stacks_out *o = arg;
    struct frame_index fi;
    if (frame_index_build(o, &fi) != 0)
        return -1;
    json_object *root = json_object_new_object();
    json_object_object_add(root, "$schema", json_object_new_string(SPEEDSCOPE_SCHEMA));
    json_object *shared = json_object_new_object();
    json_object_object_add(shared, "frames", shared_frames_json(&fi));
    json_object_object_add(root, "shared", shared);
    json_object *profiles = json_object_new_array();
    for (uint32_t i = 0; i < o->m->nthreads; i++)
        if (thread_selected(&o->m->threads[i], o->mask))
            json_object_array_add(profiles, profile_json(o, &fi, &o->m->threads[i]));
    json_object_object_add(root, "profiles", profiles);
    char name[48];
    snprintf(name, sizeof name, "gilprobe -p %d", (int)o->pid);
    json_object_object_add(root, "name", json_object_new_string(name));
    json_object_object_add(root, "activeProfileIndex", json_object_new_int(0));
    json_object_object_add(root, "exporter", json_object_new_string(SPEEDSCOPE_EXPORTER));
    free(fi.keys);
    /* Unindented: a long run has many samples, and the file is for a tool. */
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    int r = text && fprintf(out, "%s\n", text) >= 0 ? 0 : -1;
    json_object_put(root);
    return r;
}

int report_stacks_write(const struct run_metrics *m, const struct stack_exports *opt,
                        struct gp_error *err)
{
    struct stacks_out o = {.m = m, .mask = opt->state_mask, .pid = opt->pid};
    int r = GP_OK;
    if (opt->collapsed_path)
        r = report_write(opt->collapsed_path, false, NULL, as_collapsed, &o, err);
    if (r == GP_OK && opt->speedscope_path)
        r = report_write(opt->speedscope_path, true, as_speedscope, NULL, &o, err);
    return r;
}
