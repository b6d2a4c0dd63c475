#include "report/bundle.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/common.h"
#include "report/incident_page.h"
#include "report/stack_exports.h"

static const char *const FILES[] = {"report.json",     "report.txt",      "timeline.json",
                                    "stacks.collapsed", "speedscope.json", "index.html"};
#define NFILES (sizeof FILES / sizeof *FILES)

/* a/b into buf; false when it does not fit (never a cut path). */
static bool join(char *buf, size_t sz, const char *a, const char *b)
{
    int n = snprintf(buf, sz, "%s/%s", a, b);
    return n >= 0 && (size_t)n < sz;
}

static json_object *num(double v)
{
    return json_object_new_double(v);
}

static json_object *second_json(const struct timeline_entry *e)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "t", num(e->t));
    json_object_object_add(o, "unix_s", num(e->unix_s));
    json_object_object_add(o, "held_pct", num(e->held_pct));
    json_object_object_add(o, "contended_pct", num(e->contended_pct));
    json_object_object_add(o, "waiters_mean", num(e->waiters_mean));
    json_object_object_add(o, "waiters_max", json_object_new_int64(e->waiters_max));
    json_object_object_add(o, "handoffs_per_s", e->handoffs_per_s < 0 ? NULL : num(e->handoffs_per_s));
    json_object_object_add(o, "exact", json_object_new_boolean(e->exact));
    json_object_object_add(o, "exact_held_pct", e->exact ? num(e->exact_held_pct) : NULL);
    json_object_object_add(o, "wait_p50_ms", e->exact ? num(e->wait_p50_ms) : NULL);
    json_object_object_add(o, "wait_p99_ms", e->exact ? num(e->wait_p99_ms) : NULL);
    json_object_object_add(o, "wait_max_ms", e->exact ? num(e->wait_max_ms) : NULL);
    json_object_object_add(o, "hold_p99_ms", e->exact ? num(e->hold_p99_ms) : NULL);
    json_object_object_add(o, "hold_max_ms", e->exact ? num(e->hold_max_ms) : NULL);
    json_object_object_add(o, "runnable_mean", num(e->runnable_mean));
    json_object_object_add(o, "python_threads", json_object_new_int64(e->python_threads));
    json_object_object_add(o, "os_threads", json_object_new_int64(e->os_threads));
    json_object_object_add(o, "rss_kb", json_object_new_int64((int64_t)e->rss_kb));
    json_object *th = json_object_new_array();
    for (uint32_t i = 0; i < e->nthreads; i++) {
        const struct timeline_thread *x = &e->threads[i];
        json_object *t = json_object_new_object();
        json_object_object_add(t, "tid", json_object_new_int(x->tid));
        json_object_object_add(t, "name", json_object_new_string(x->name));
        json_object_object_add(t, "held_pct", num(x->held_pct));
        json_object_object_add(t, "wait_pct", num(x->wait_pct));
        json_object_object_add(t, "lock_wait_pct", num(x->lock_wait_pct));
        json_object_object_add(t, "cpu_pct", num(x->cpu_pct));
        json_object_array_add(th, t);
    }
    json_object_object_add(o, "threads", th);
    json_object *lk = json_object_new_array();
    for (uint32_t i = 0; i < e->nlocks; i++) {
        json_object *l = json_object_new_object();
        json_object_object_add(l, "addr", report_json_hex(e->locks[i].addr));
        json_object_object_add(l, "wait_pct", num(e->locks[i].wait_pct));
        json_object_object_add(l, "waiters", json_object_new_int64(e->locks[i].waiters));
        json_object_array_add(lk, l);
    }
    json_object_object_add(o, "locks", lk);
    json_object *lp = json_object_new_array();
    double stall_max = 0;
    for (uint32_t i = 0; i < e->nloops; i++) {
        json_object *l = json_object_new_object();
        json_object_object_add(l, "tid", json_object_new_int(e->loops[i].tid));
        json_object_object_add(l, "busy_pct", num(e->loops[i].busy_pct));
        json_object_object_add(l, "stalls", json_object_new_int64(e->loops[i].stalls));
        json_object_object_add(l, "stall_max_ms", num(e->loops[i].stall_max_ms));
        json_object_array_add(lp, l);
        if (e->loops[i].stall_max_ms > stall_max)
            stall_max = e->loops[i].stall_max_ms;
    }
    json_object_object_add(o, "loops", lp);
    json_object_object_add(o, "loop_stall_max_ms", num(stall_max));
    return o;
}

json_object *bundle_timeline_json(const struct timeline *tl, json_object *triggers)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "interval_s", num(1.0));
    json_object *secs = json_object_new_array();
    for (uint32_t i = 0; i < tl->count; i++)
        json_object_array_add(secs, second_json(timeline_at(tl, i)));
    json_object_object_add(o, "seconds", secs);
    json_object *marks = json_object_new_array();
    size_t n = triggers ? json_object_array_length(triggers) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *tr = json_object_array_get_idx(triggers, i), *t, *expr;
        json_object *mk = json_object_new_object();
        json_object_object_get_ex(tr, "t", &t);
        json_object_object_get_ex(tr, "expr", &expr);
        json_object_object_add(mk, "t", json_object_get(t));
        json_object_object_add(mk, "label", json_object_get(expr));
        json_object_array_add(marks, mk);
    }
    json_object_object_add(o, "marks", marks);
    return o;
}

static json_object *range(double from, double to)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "from", num(from));
    json_object_object_add(o, "to", num(to));
    return o;
}

json_object *bundle_incident_json(const struct bundle_input *in)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "span", range(in->span_from, in->span_to));
    json_object_object_add(o, "focus", range(in->focus_from, in->focus_to));
    json_object_object_add(o, "focus_note",
                           json_object_new_string("the report covers the focus: the stretch of the "
                                                  "recorded span with the worst diagnosis"));
    return o;
}

static void remove_tree(const char *dir)
{
    char p[4200];
    for (size_t i = 0; i < NFILES; i++) {
        if (join(p, sizeof p, dir, FILES[i]))
            unlink(p);
    }
    rmdir(dir);
}

int bundle_dir_prepare(const char *dir, struct gp_error *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot create the incident directory %s: %s; give "
                     "--out a writable directory", dir, strerror(errno));
        return err->code;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write incidents to %s: %s; give --out a "
                     "writable directory", dir, errno ? strerror(errno) : "not a directory");
        return err->code;
    }
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[4200];
    while (d && (de = readdir(d)))
        if (strncmp(de->d_name, BUNDLE_TMP_PREFIX, strlen(BUNDLE_TMP_PREFIX)) == 0) {
            if (join(p, sizeof p, dir, de->d_name))
                remove_tree(p);
        }
    if (d)
        closedir(d);
    return GP_OK;
}

static int write_json_file(const char *path, json_object *doc, struct gp_error *err)
{
    FILE *f = fopen(path, "we");
    int r = f ? report_json_write(f, json_object_get(doc)) : -1;
    if (f && fclose(f) != 0)
        r = -1;
    if (r != 0) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write %s: %s", path, strerror(errno ? errno : EIO));
        return err->code;
    }
    return GP_OK;
}

static int write_text(const char *path, const struct bundle_input *in, struct gp_error *err)
{
    FILE *f = fopen(path, "we");
    if (f) {
        size_t n = json_object_array_length(in->triggers);
        for (size_t i = 0; i < n; i++) {
            json_object *tr = json_object_array_get_idx(in->triggers, i), *v;
            const char *expr = "", *measured = "", *at = "";
            if (json_object_object_get_ex(tr, "expr", &v))
                expr = json_object_get_string(v);
            if (json_object_object_get_ex(tr, "measured", &v))
                measured = json_object_get_string(v);
            if (json_object_object_get_ex(tr, "at", &v))
                at = json_object_get_string(v);
            fprintf(f, "Trigger: %s (measured %s) at %s\n", expr, measured, at);
        }
        fputc('\n', f);
        report_sample_text(f, in->rep);
    }
    int bad = !f || fflush(f) != 0 || ferror(f);
    if (f && fclose(f) != 0)
        bad = 1;
    if (bad) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write %s: %s", path, strerror(errno ? errno : EIO));
        return err->code;
    }
    return GP_OK;
}

/* DIR/index.json gains the bundle (rewritten whole, then renamed). */
static int add_to_index(const struct bundle_input *in, const char *name, json_object *report,
                        struct gp_error *err)
{
    char path[4200], tmp[4200];
    if (!join(path, sizeof path, in->dir, "index.json") ||
        !join(tmp, sizeof tmp, in->dir, BUNDLE_TMP_PREFIX "index.json")) {
        gp_error_set(err, GP_ERR_OUTPUT, "the incident directory's path is too long: %s", in->dir);
        return err->code;
    }
    json_object *index = json_object_from_file(path);
    json_object *list = NULL;
    if (!index || !json_object_object_get_ex(index, "bundles", &list) ||
        !json_object_is_type(list, json_type_array)) {
        json_object_put(index);
        index = json_object_new_object();
        list = json_object_new_array();
        json_object_object_add(index, "bundles", list);
    }
    json_object *b = json_object_new_object();
    json_object_object_add(b, "path", json_object_new_string(name));
    json_object_object_add(b, "pid", json_object_new_int(in->pid));
    json_object_object_add(b, "written_unix", json_object_new_int64((int64_t)in->when));
    json_object_object_add(b, "triggers", json_object_get(in->triggers));
    json_object *findings, *top = NULL;
    if (json_object_object_get_ex(report, "findings", &findings) &&
        json_object_array_length(findings) > 0)
        top = json_object_array_get_idx(findings, 0);
    json_object_object_add(b, "top_finding", top ? json_object_get(top) : NULL);
    json_object_array_add(list, b);
    int r = write_json_file(tmp, index, err);
    json_object_put(index);
    if (r == GP_OK && rename(tmp, path) != 0) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot update %s: %s", path, strerror(errno));
        r = err->code;
    }
    if (r != GP_OK)
        unlink(tmp);
    return r;
}

int bundle_write(const struct bundle_input *in, char *path, size_t pathsz, struct gp_error *err)
{
    char name[96], hidden[128], tmp[4200], file[4400];
    struct tm tm;
    gmtime_r(&in->when, &tm);
    size_t len = strftime(name, sizeof name, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(name + len, sizeof name - len, "-%d-%u", (int)in->pid, in->seq);
    snprintf(hidden, sizeof hidden, BUNDLE_TMP_PREFIX "%s", name);
    if (!join(tmp, sizeof tmp, in->dir, hidden) || !join(path, pathsz, in->dir, name)) {
        gp_error_set(err, GP_ERR_OUTPUT, "the incident directory's path is too long: %s", in->dir);
        return err->code;
    }
    if (mkdir(tmp, 0755) != 0) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot create %s: %s", tmp, strerror(errno));
        return err->code;
    }
    json_object *report = report_sample_doc(in->rep);
    json_object_object_add(report, "trigger",
                           json_object_get(json_object_array_get_idx(in->triggers, 0)));
    json_object_object_add(report, "triggers", json_object_get(in->triggers));
    json_object_object_add(report, "incident", bundle_incident_json(in));
    json_object *timeline = bundle_timeline_json(in->tl, in->triggers);
    json_object_object_add(timeline, "incident", bundle_incident_json(in));
    int r;
    r = join(file, sizeof file, tmp, "report.json") ? write_json_file(file, report, err) : GP_OK;
    if (r == GP_OK) {
        join(file, sizeof file, tmp, "report.txt");
        r = write_text(file, in, err);
    }
    if (r == GP_OK) {
        join(file, sizeof file, tmp, "timeline.json");
        r = write_json_file(file, timeline, err);
    }
    if (r == GP_OK) {
        char collapsed[4400], speedscope[4400];
        join(collapsed, sizeof collapsed, tmp, "stacks.collapsed");
        join(speedscope, sizeof speedscope, tmp, "speedscope.json");
        struct stack_exports x = {in->pid, collapsed, speedscope, 0};
        r = report_stacks_write(in->rep->m, &x, err);
    }
    if (r == GP_OK) {
        join(file, sizeof file, tmp, "index.html");
        r = report_incident_page(file, report, timeline, in->rep->m, err);
    }
    if (r == GP_OK && rename(tmp, path) != 0) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot move %s into place: %s", tmp, strerror(errno));
        r = err->code;
    }
    if (r != GP_OK)
        remove_tree(tmp);
    else
        r = add_to_index(in, name, report, err);
    json_object_put(timeline);
    json_object_put(report);
    return r;
}
