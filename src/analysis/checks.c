#include "analysis/checks.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A metric yields a number (false: not measured in this run). */
typedef bool (*metric_fn)(json_object *doc, const char *arg, double *out, char *note,
                          size_t notesz);

struct check_metric {
    const char *name;
    metric_fn get;
    const char *arg; /* the JSON path (or array.field) it reads */
    const char *help;
};

/* The value at a dotted path ("gil.held_pct"); false for missing or null. */
static bool path_number(json_object *doc, const char *path, double *out)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_object *o = doc;
    for (char *save = NULL, *part = strtok_r(buf, ".", &save); part && o;
         part = strtok_r(NULL, ".", &save))
        if (!json_object_object_get_ex(o, part, &o))
            return false;
    if (!o || !(json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int)))
        return false;
    *out = json_object_get_double(o);
    return true;
}

/* The array under `key` in doc, or NULL. */
static json_object *array_named(json_object *doc, const char *key)
{
    json_object *a;
    return json_object_object_get_ex(doc, key, &a) && json_object_is_type(a, json_type_array)
               ? a
               : NULL;
}

static bool get_path(json_object *doc, const char *arg, double *out, char *note, size_t notesz)
{
    (void)note;
    (void)notesz;
    return path_number(doc, arg, out);
}

/* "array|field[|fallback field]": the largest value over the array's
 * elements (0 for an empty array); per element the first field present. */
static bool get_max(json_object *doc, const char *arg, double *out, char *note, size_t notesz)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", arg);
    char *save = NULL;
    const char *array = strtok_r(buf, "|", &save);
    const char *fields[3] = {0};
    for (int i = 0; i < 3; i++)
        fields[i] = strtok_r(NULL, "|", &save);
    json_object *a = array ? array_named(doc, array) : NULL;
    if (!a)
        return false;
    size_t n = json_object_array_length(a), seen = 0;
    double best = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(a, i);
        for (int f = 0; f < 3 && fields[f]; f++) {
            double v;
            if (path_number(e, fields[f], &v)) {
                best = seen++ && best > v ? best : v;
                break;
            }
        }
    }
    if (!n)
        snprintf(note, notesz, " (no %s seen)", array);
    *out = best;
    return true;
}

static bool get_count(json_object *doc, const char *arg, double *out, char *note, size_t notesz)
{
    (void)note;
    (void)notesz;
    json_object *a = array_named(doc, arg);
    if (!a)
        return false;
    *out = (double)json_object_array_length(a);
    return true;
}

static bool get_sum(json_object *doc, const char *arg, double *out, char *note, size_t notesz)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", arg);
    char *field = strchr(buf, '|');
    if (!field)
        return false;
    *field++ = '\0';
    json_object *a = array_named(doc, buf);
    if (!a)
        return false;
    double sum = 0;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        double v;
        if (path_number(json_object_array_get_idx(a, i), field, &v))
            sum += v;
    }
    (void)note;
    (void)notesz;
    *out = sum;
    return true;
}

/* Exact (eBPF) figure when it was measured, else the sampled one. */
static bool get_first(json_object *doc, const char *arg, double *out, char *note, size_t notesz)
{
    char buf[160];
    snprintf(buf, sizeof buf, "%s", arg);
    char *alt = strchr(buf, ';');
    if (alt)
        *alt++ = '\0';
    if (path_number(doc, buf, out)) {
        snprintf(note, notesz, " (%s)", buf);
        return true;
    }
    if (alt && strchr(alt, '|') && get_max(doc, alt, out, note, notesz)) {
        snprintf(note, notesz, " (sampled: %s)", alt);
        return true;
    }
    return false;
}

static const char *const SEVERITIES[] = {"none", "info", "warning", "critical"};

static int severity_rank(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, SEVERITIES[i]) == 0)
            return i;
    return -1;
}

/* The most severe finding's rank (0: no finding). */
static bool get_finding(json_object *doc, const char *arg, double *out, char *note, size_t notesz)
{
    (void)arg;
    (void)note;
    (void)notesz;
    json_object *a = array_named(doc, "findings");
    if (!a)
        return false;
    int worst = 0;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *sev;
        if (json_object_object_get_ex(json_object_array_get_idx(a, i), "severity", &sev)) {
            int r = severity_rank(json_object_get_string(sev));
            worst = r > worst ? r : worst;
        }
    }
    *out = worst;
    return true;
}

static const struct check_metric METRICS[] = {
    {"gil.held_pct", get_path, "gil.held_pct", "sampled share of time the GIL was held"},
    {"gil.contended_pct", get_path, "gil.contended_pct",
     "share of time at least one thread waited for the GIL"},
    {"gil.waiters_mean", get_path, "gil.waiters_mean", "mean number of GIL waiters"},
    {"gil.waiters_max", get_path, "gil.waiters_max", "most GIL waiters at once"},
    {"gil.handoffs_per_s", get_path, "gil.handoffs_per_s", "GIL hand-offs per second"},
    {"gil.handoffs_per_cpu_s", get_path, "gil.handoffs_per_cpu_s",
     "GIL hand-offs per second of the process's CPU time"},
    {"gil.mean_hold_ms", get_path, "gil.mean_hold_ms", "mean GIL hold per hand-off (ms)"},
    {"gil.wait_p99_ms", get_first,
     "gil_exact.wait.p99_ms;threads|gil_wait_stretches.p99_ms",
     "p99 GIL wait (ms): exact with eBPF, else the worst thread's sampled wait stretches"},
    {"gil.wait_max_ms", get_first, "gil_exact.wait.max_ms;threads|gil_wait_stretches.max_ms",
     "longest GIL wait (ms): exact with eBPF, else sampled"},
    {"gil.hold_p99_ms", get_path, "gil_exact.hold.p99_ms", "p99 GIL hold (ms, eBPF only)"},
    {"gil.hold_max_ms", get_path, "gil_exact.hold.max_ms", "longest GIL hold (ms, eBPF only)"},
    {"gil_exact.held_pct", get_path, "gil_exact.held_pct", "exact share of time held (eBPF)"},
    {"thread.max_gil_wait_pct", get_max, "threads|gil_wait_pct",
     "the most any thread waited for the GIL (% of its time)"},
    {"thread.max_gil_held_pct", get_max, "threads|gil_held_pct",
     "the most any thread held the GIL (%)"},
    {"thread.max_lock_wait_pct", get_max, "threads|lock_wait_pct",
     "the most any thread waited on a lock (%)"},
    {"thread.max_idle_wait_pct", get_max, "threads|idle_wait_pct",
     "the most any thread waited for work or a notification (%)"},
    {"thread.max_io_wait_pct", get_max, "threads|io_wait_pct", "the most any thread waited on I/O (%)"},
    {"thread.max_nogil_running_pct", get_max, "threads|nogil_running_pct",
     "the most any thread ran native code without the GIL (%)"},
    {"thread.max_cpu_pct", get_max, "threads|cpu_pct", "the busiest thread's CPU (%)"},
    {"threads.python_max", get_path, "run.python_threads.max", "most Python threads at once"},
    {"threads.os_max", get_path, "run.os_threads.max", "most OS threads at once"},
    {"lock.count", get_count, "locks", "locks waited on"},
    {"lock.max_wait_pct", get_max, "locks|wait_pct", "the most-waited lock's share (%)"},
    {"loop.count", get_count, "loops", "asyncio event loops seen"},
    {"loop.stall_max_ms", get_max, "loops|exact.stall_max_ms|stall_max_ms",
     "longest event-loop stall (ms; exact with eBPF, else sampled; 0 without loops)"},
    {"loop.stall_count", get_sum, "loops|stall_count", "event-loop stalls, all loops"},
    {"loop.stalled_pct", get_max, "loops|stalled_pct", "the most any loop was stalled (%)"},
    {"loop.busy_pct", get_max, "loops|busy_pct",
     "the most any loop was out of its selector, stalled or not (%)"},
    {"loop.timer_lag_max_ms", get_max, "loops|timer_lag_max_ms", "worst asyncio timer lag (ms)"},
    {"samples.taken", get_path, "samples.taken", "samples taken"},
    {"samples.rate_hz", get_path, "samples.rate_hz", "achieved sampling rate"},
    {"samples.missed", get_path, "samples.missed", "ticks the sampler missed"},
    {"run.duration_s", get_path, "run.duration_s", "how long the run was sampled (s)"},
    {"memory.rss_growth_kb_per_s", get_path, "system.memory.rss_growth_kb_per_s",
     "resident memory growth (KiB/s)"},
    {"process.zombies", get_path, "system.process_tree.zombies", "zombie children at the end"},
    {"process.children_growth_per_s", get_path, "system.process_tree.children_growth_per_s",
     "child processes added per second"},
    {"finding", get_finding, NULL,
     "the most severe finding: none < info < warning < critical (e.g. finding>=warning)"},
    {"scenario", NULL, NULL, "a finding of this scenario was made (scenario=S2, scenario!=S5)"},
};

#define NMETRICS (sizeof METRICS / sizeof METRICS[0])

static const char *op_text(enum check_op op)
{
    static const char *const t[] = {">", ">=", "<", "<=", "==", "!="};
    return t[op];
}

/* The operator at s, its length in *len; -1 when none. */
static int parse_op(const char *s, int *len)
{
    if (s[0] == '>' || s[0] == '<') {
        bool eq = s[1] == '=';
        *len = eq ? 2 : 1;
        return s[0] == '>' ? (eq ? CHECK_GE : CHECK_GT) : (eq ? CHECK_LE : CHECK_LT);
    }
    if (s[0] == '!' && s[1] == '=') {
        *len = 2;
        return CHECK_NE;
    }
    if (s[0] == '=') {
        *len = s[1] == '=' ? 2 : 1;
        return CHECK_EQ;
    }
    return -1;
}

static void list_names(char *buf, size_t sz)
{
    size_t used = 0;
    for (size_t i = 0; i < NMETRICS && used + 2 < sz; i++)
        used += (size_t)snprintf(buf + used, sz - used, "%s%s", i ? ", " : "", METRICS[i].name);
}

int check_parse(const char *text, struct check *c, char *why, size_t whysz)
{
    memset(c, 0, sizeof *c);
    size_t k = 0;
    for (const char *p = text; *p && k + 1 < sizeof c->expr; p++)
        if (!isspace((unsigned char)*p))
            c->expr[k++] = *p;
    size_t name_len = strcspn(c->expr, "<>=!");
    int oplen = 0, op = c->expr[name_len] ? parse_op(c->expr + name_len, &oplen) : -1;
    const char *value = c->expr + name_len + oplen;
    if (name_len == 0 || op < 0 || !*value) {
        snprintf(why, whysz, "--fail-on '%s' is not METRIC OP VALUE (OP: > >= < <= == !=), "
                 "e.g. gil.held_pct>80", text);
        return -1;
    }
    for (size_t i = 0; i < NMETRICS; i++)
        if (strlen(METRICS[i].name) == name_len && strncmp(METRICS[i].name, c->expr, name_len) == 0)
            c->metric = &METRICS[i];
    if (!c->metric) {
        char names[2048];
        list_names(names, sizeof names);
        snprintf(why, whysz, "--fail-on '%s': unknown metric '%.*s'; valid metrics: %s", text,
                 (int)name_len, c->expr, names);
        return -1;
    }
    c->op = (enum check_op)op;
    if (!c->metric->get) { /* scenario */
        if (op != CHECK_EQ && op != CHECK_NE) {
            snprintf(why, whysz, "--fail-on '%s': scenario takes = or !=, e.g. scenario=S2", text);
            return -1;
        }
        if (!(toupper((unsigned char)value[0]) == 'S' && value[1] >= '1' && value[1] <= '8' &&
              !value[2])) {
            snprintf(why, whysz, "--fail-on '%s': scenarios are S1 to S8", text);
            return -1;
        }
        snprintf(c->word, sizeof c->word, "S%c", value[1]);
        return 0;
    }
    if (c->metric->get == get_finding) {
        int r = severity_rank(value);
        if (r < 0) {
            snprintf(why, whysz, "--fail-on '%s': finding is compared with none, info, warning "
                     "or critical", text);
            return -1;
        }
        c->value = r;
        return 0;
    }
    char *end;
    c->value = strtod(value, &end);
    if (*end || !isfinite(c->value)) {
        snprintf(why, whysz, "--fail-on '%s': '%s' is not a number", text, value);
        return -1;
    }
    return 0;
}

static bool compare(double a, enum check_op op, double b)
{
    switch (op) {
    case CHECK_GT: return a > b;
    case CHECK_GE: return a >= b;
    case CHECK_LT: return a < b;
    case CHECK_LE: return a <= b;
    case CHECK_EQ: return a == b;
    case CHECK_NE: return a != b;
    }
    return false;
}

/* Scenarios of the findings, "S2,S5" (or "none"); whether `want` is one. */
static bool scenarios_seen(json_object *doc, const char *want, char *out, size_t sz)
{
    json_object *a = array_named(doc, "findings");
    bool found = false;
    size_t used = 0;
    out[0] = '\0';
    if (a)
        for (size_t i = 0; i < json_object_array_length(a); i++) {
            json_object *s;
            if (!json_object_object_get_ex(json_object_array_get_idx(a, i), "scenario", &s))
                continue;
            const char *sc = json_object_get_string(s);
            found |= strcmp(sc, want) == 0;
            if (!strstr(out, sc) && used + 8 < sz)
                used += (size_t)snprintf(out + used, sz - used, "%s%s", used ? "," : "", sc);
        }
    if (!out[0])
        snprintf(out, sz, "none");
    return found;
}

void checks_evaluate(struct check *c, size_t n, json_object *report)
{
    for (size_t i = 0; i < n; i++) {
        struct check *k = &c[i];
        if (!k->metric->get) {
            bool seen = scenarios_seen(report, k->word, k->measured, sizeof k->measured);
            k->outcome = seen == (k->op == CHECK_EQ) ? CHECK_FAILED : CHECK_PASSED;
            continue;
        }
        double v;
        char note[80] = "";
        if (!k->metric->get(report, k->metric->arg, &v, note, sizeof note)) {
            k->outcome = CHECK_NOT_MEASURED;
            snprintf(k->measured, sizeof k->measured, "not measured in this run");
            continue;
        }
        if (k->metric->get == get_finding)
            snprintf(k->measured, sizeof k->measured, "%s", SEVERITIES[(int)v]);
        else
            snprintf(k->measured, sizeof k->measured, "%.6g%s", v, note);
        k->outcome = compare(v, k->op, k->value) ? CHECK_FAILED : CHECK_PASSED;
    }
}

size_t checks_failed(const struct check *c, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += c[i].outcome != CHECK_PASSED;
    return bad;
}

static const char *outcome_key(enum check_outcome o)
{
    return o == CHECK_PASSED ? "passed" : o == CHECK_FAILED ? "failed" : "not_measured";
}

json_object *checks_json(const struct check *c, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "expr", json_object_new_string(c[i].expr));
        json_object_object_add(o, "metric", json_object_new_string(c[i].metric->name));
        json_object_object_add(o, "op", json_object_new_string(op_text(c[i].op)));
        json_object_object_add(o, "measured", json_object_new_string(c[i].measured));
        json_object_object_add(o, "result", json_object_new_string(outcome_key(c[i].outcome)));
        json_object_array_add(a, o);
    }
    return a;
}

void checks_print(FILE *out, const struct check *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c[i].outcome == CHECK_FAILED)
            fprintf(out, "gilprobe: check failed: %s (measured %s)\n", c[i].expr, c[i].measured);
        else if (c[i].outcome == CHECK_NOT_MEASURED)
            fprintf(out, "gilprobe: check failed: %s: %s\n", c[i].expr, c[i].measured);
    }
    size_t bad = checks_failed(c, n);
    fprintf(out, "gilprobe: %zu check%s, %zu passed, %zu failed\n", n, n == 1 ? "" : "s",
            n - bad, bad);
}
