#include "analysis/checks.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
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
    {"loop.timer_lag_p99_ms", get_max, "loops|timer_lag_p99_ms",
     "p99 lateness of the timers seen run, the worst loop (ms; measured)"},
    {"loop.timeouts_expired", get_sum, "loops|timers.timeouts.expired",
     "asyncio timeouts that expired because their loop was busy at the deadline, all loops"},
    {"loop.timeouts_expired_in_stalls", get_sum, "loops|timers.timeouts.expired_in_stalls",
     "of those, the ones overdue during a stall"},
    {"loop.timeouts_pending_max", get_max, "loops|timers.timeouts.pending_max",
     "most asyncio timeouts pending at once on one loop"},
    {"loop.tasks", get_max, "loops|tasks.last", "asyncio tasks alive at the end, the most of any loop"},
    {"loop.tasks_growth_per_s", get_max, "loops|tasks.growth_per_s",
     "how fast a loop's task count grew (tasks/s, least-squares slope)"},
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

/* thread[SELECTOR].METRIC: a figure of one thread, read from its threads[]
 * entry (`field`) or, when eBPF measured it, from its gil_exact.threads[]
 * entry (`exact`, preferred). A missing `field` is 0 when `count` (of
 * the events it is a quantile of) is 0: a thread that never waited has
 * no p99 wait, and "not measured" would fail a CI gate over nothing. */
struct check_thread_metric {
    const char *name;
    const char *field; /* NULL: exact only */
    const char *exact; /* NULL: sampled only */
    const char *count;
};

static const struct check_thread_metric THREAD_METRICS[] = {
    {"gil_wait_pct", "gil_wait_pct", NULL, NULL},
    {"gil_held_pct", "gil_held_pct", NULL, NULL},
    {"lock_wait_pct", "lock_wait_pct", NULL, NULL},
    {"idle_wait_pct", "idle_wait_pct", NULL, NULL},
    {"io_wait_pct", "io_wait_pct", NULL, NULL},
    {"nogil_running_pct", "nogil_running_pct", NULL, NULL},
    {"cpu_pct", "cpu_pct", NULL, NULL},
    {"gil_wait_p99_ms", "gil_wait_stretches.p99_ms", "wait.p99_ms", "gil_wait_stretches.count"},
    {"gil_wait_max_ms", "gil_wait_stretches.max_ms", "wait.max_ms", "gil_wait_stretches.count"},
    {"gil_hold_p99_ms", NULL, "hold.p99_ms", NULL},
    {"gil_hold_max_ms", NULL, "hold.max_ms", NULL},
    {"gil_wait_caused_ms", "gil_wait_caused_ms", NULL, NULL},
};

#define NTHREAD_METRICS (sizeof THREAD_METRICS / sizeof THREAD_METRICS[0])

/* What c->metric points at for per-thread checks: the API promises a
 * metric; its name is the form, the check's own is in checks_json. */
static const struct check_metric THREAD_CHECK = {"thread[SELECTOR].METRIC", NULL, NULL,
                                                 "a figure of the threads a selector picks"};

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

static void list_thread_names(char *buf, size_t sz)
{
    size_t used = 0;
    for (size_t i = 0; i < NTHREAD_METRICS && used + 2 < sz; i++)
        used += (size_t)snprintf(buf + used, sz - used, "%s%s", i ? ", " : "",
                                 THREAD_METRICS[i].name);
}

static void list_names(char *buf, size_t sz)
{
    size_t used = 0;
    for (size_t i = 0; i < NMETRICS && used + 2 < sz; i++)
        used += (size_t)snprintf(buf + used, sz - used, "%s%s", i ? ", " : "", METRICS[i].name);
    if (used + 2 < sz)
        used += (size_t)snprintf(buf + used, sz - used,
                                 ", thread[TID|NAME|name~=REGEX].METRIC with METRIC one of ");
    if (used + 2 < sz)
        list_thread_names(buf + used, sz - used);
}

/* A usage error about a per-thread check: what is wrong, then the form
 * and every per-thread name, so that the next try can be right. */
__attribute__((format(printf, 4, 5))) static int thread_usage(char *why, size_t whysz,
                                                              const char *text, const char *fmt,
                                                              ...)
{
    char what[256], names[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    list_thread_names(names, sizeof names);
    snprintf(why, whysz, "--fail-on '%s': %s; per-thread checks are "
             "thread[TID|NAME|name~=REGEX].METRIC OP VALUE, METRIC one of %s", text, what, names);
    return -1;
}

/* [s, s + *len) without the blanks around it. */
static const char *trimmed(const char *s, size_t *len)
{
    while (*len && isspace((unsigned char)*s)) {
        s++;
        (*len)--;
    }
    while (*len && isspace((unsigned char)s[*len - 1]))
        (*len)--;
    return s;
}

/* The REGEX of "name~=REGEX" (blanks around ~= allowed), or NULL. */
static const char *regex_part(const char *sel)
{
    if (strncmp(sel, "name", 4) != 0)
        return NULL;
    const char *p = sel + 4;
    while (isspace((unsigned char)*p))
        p++;
    if (strncmp(p, "~=", 2) != 0)
        return NULL;
    for (p += 2; isspace((unsigned char)*p); p++)
        ;
    return p;
}

/* Compiled once here: a bad regex is a usage error before any sampling. */
static int compile_selector(const char *re, struct check_thread *t, char *err, size_t errsz)
{
    if (!*re) {
        snprintf(err, errsz, "name~= needs a regular expression, e.g. name~=^worker");
        return -1;
    }
    int rc = regcomp(&t->re, re, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &t->re, msg, sizeof msg);
        snprintf(err, errsz, "'%s' is not a POSIX extended regular expression: %s", re, msg);
        return -1;
    }
    t->by = CHECK_BY_REGEX;
    return 0;
}

/* What is inside thread[...]: a TID (all digits), name~=REGEX, or else an
 * exact name. 0, or -1 with what is wrong in err. */
static int parse_selector(const char *s, size_t len, struct check_thread *t, char *err,
                          size_t errsz)
{
    s = trimmed(s, &len);
    if (!len) {
        snprintf(err, errsz, "empty thread selector '[]': give a TID, a name or name~=REGEX");
        return -1;
    }
    if (len >= sizeof t->sel) {
        snprintf(err, errsz, "the thread selector is longer than %zu characters",
                 sizeof t->sel - 1);
        return -1;
    }
    memcpy(t->sel, s, len);
    t->sel[len] = '\0';
    if (strspn(t->sel, "0123456789") == len) {
        t->tid = strtol(t->sel, NULL, 10);
        if (t->tid <= 0 || t->tid > 4194304) { /* PID_MAX_LIMIT */
            snprintf(err, errsz, "'%s' is not a thread ID (1 to 4194304)", t->sel);
            return -1;
        }
        t->by = CHECK_BY_TID;
        return 0;
    }
    const char *re = regex_part(t->sel);
    if (re)
        return compile_selector(re, t, err, errsz);
    t->by = CHECK_BY_NAME;
    return 0;
}

/* ".METRIC OP VALUE", what follows thread[...] (blanks removed). */
static int parse_thread_rest(const char *text, const char *rest, struct check *c, char *why,
                             size_t whysz)
{
    if (rest[0] != '.')
        return thread_usage(why, whysz, text, "'.METRIC OP VALUE' expected after ']'");
    const char *name = rest + 1;
    size_t name_len = strcspn(name, "<>=!");
    for (size_t i = 0; i < NTHREAD_METRICS; i++)
        if (strlen(THREAD_METRICS[i].name) == name_len &&
            strncmp(THREAD_METRICS[i].name, name, name_len) == 0)
            c->thread.metric = &THREAD_METRICS[i];
    if (!c->thread.metric)
        return thread_usage(why, whysz, text, "unknown per-thread metric '%.*s'", (int)name_len,
                            name);
    int oplen = 0, op = name[name_len] ? parse_op(name + name_len, &oplen) : -1;
    const char *value = name + name_len + oplen;
    if (op < 0 || !*value)
        return thread_usage(why, whysz, text, "OP VALUE expected after '%.*s' (OP: > >= < <= "
                            "== !=)", (int)name_len, name);
    c->op = (enum check_op)op;
    char *end;
    c->value = strtod(value, &end);
    if (*end || !isfinite(c->value))
        return thread_usage(why, whysz, text, "'%s' is not a number", value);
    return 0;
}

/* thread[SELECTOR].METRIC OP VALUE. The selector is taken from the text as
 * given, blanks and all (Python names have them: "Thread-1 (spin)"), and
 * ends at the last ']': a regex may hold brackets, METRIC OP VALUE none. */
static int parse_thread_check(const char *text, struct check *c, char *why, size_t whysz)
{
    const char *open = strchr(text, '['), *close = strrchr(text, ']');
    if (!open || !close || close < open)
        return thread_usage(why, whysz, text, "'thread[' is never closed with ']'");
    char err[256];
    if (parse_selector(open + 1, (size_t)(close - open - 1), &c->thread, err, sizeof err) != 0)
        return thread_usage(why, whysz, text, "%s", err);
    char rest[sizeof c->expr];
    size_t k = 0;
    for (const char *p = close + 1; *p && k + 1 < sizeof rest; p++)
        if (!isspace((unsigned char)*p))
            rest[k++] = *p;
    rest[k] = '\0';
    if (parse_thread_rest(text, rest, c, why, whysz) != 0) {
        checks_free(c, 1);
        return -1;
    }
    c->metric = &THREAD_CHECK;
    int len = snprintf(c->expr, sizeof c->expr, "thread[%s]%s", c->thread.sel, rest);
    if (len < 0 || (size_t)len >= sizeof c->expr) { /* the report shows it whole, or not at all */
        checks_free(c, 1);
        return thread_usage(why, whysz, text, "longer than %zu characters", sizeof c->expr - 1);
    }
    return 0;
}

int check_parse(const char *text, struct check *c, char *why, size_t whysz)
{
    memset(c, 0, sizeof *c);
    size_t k = 0;
    for (const char *p = text; *p && k + 1 < sizeof c->expr; p++)
        if (!isspace((unsigned char)*p))
            c->expr[k++] = *p;
    if (strncmp(c->expr, "thread[", 7) == 0)
        return parse_thread_check(text, c, why, whysz);
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

/* A thread as checks match and name it: its Python name, else its OS
 * name (a thread started without threading.Thread has no Python name). */
static const char *thread_label(json_object *t)
{
    json_object *n;
    if (json_object_object_get_ex(t, "python_name", &n) &&
        json_object_is_type(n, json_type_string) && json_object_get_string_len(n) > 0)
        return json_object_get_string(n);
    if (json_object_object_get_ex(t, "name", &n) && json_object_is_type(n, json_type_string))
        return json_object_get_string(n);
    return "";
}

static long thread_tid(json_object *t)
{
    json_object *v;
    return json_object_object_get_ex(t, "tid", &v) ? (long)json_object_get_int64(v) : 0;
}

static bool thread_selected(const struct check_thread *s, json_object *t)
{
    switch (s->by) {
    case CHECK_BY_TID: return thread_tid(t) == s->tid;
    case CHECK_BY_NAME: return strcmp(thread_label(t), s->sel) == 0;
    case CHECK_BY_REGEX: return regexec(&s->re, thread_label(t), 0, NULL, 0) == 0;
    case CHECK_REPORT: break;
    }
    return false;
}

/* The thread's entry in gil_exact.threads[] (NULL: none there); *listed:
 * how many threads that list has (0: no exact per-thread figures). */
static json_object *exact_entry(json_object *doc, long tid, size_t *listed)
{
    json_object *x, *a;
    *listed = 0;
    if (!json_object_object_get_ex(doc, "gil_exact", &x) || !x || !(a = array_named(x, "threads")))
        return NULL;
    *listed = json_object_array_length(a);
    for (size_t i = 0; i < *listed; i++)
        if (thread_tid(json_object_array_get_idx(a, i)) == tid)
            return json_object_array_get_idx(a, i);
    return NULL;
}

/* One thread's figure, false when this run did not measure it for that
 * thread; *how: "exact", "sampled", or "" for figures with one source. */
static bool thread_value(json_object *doc, json_object *t, const struct check_thread_metric *m,
                         double *out, const char **how)
{
    size_t listed = 0;
    json_object *x = m->exact ? exact_entry(doc, thread_tid(t), &listed) : NULL;
    *how = m->exact ? "exact" : "";
    if (x && path_number(x, m->exact, out))
        return true;
    *out = 0;
    /* eBPF lists every thread with GIL activity in its window: one it
     * does not list held the GIL 0 ms (an empty list: not measured) */
    if (!m->field)
        return listed > 0 && !x;
    *how = m->exact ? "sampled" : "";
    double n;
    return path_number(t, m->field, out) ||
           (m->count && path_number(t, m->count, &n) && n == 0);
}

/* The thread that decides a per-thread check, out of those its selector
 * matched and this run measured. */
struct thread_pick {
    json_object *t; /* NULL: none */
    double v;
    const char *how;
    size_t matched, measured;
};

/* Whether v decides instead of the pick so far: the worst value for the
 * operator (the largest for > >=, the smallest for < <=), so that the
 * check fails when any thread makes it true; for == != the first that
 * makes it true, else the first. */
static bool decides(const struct thread_pick *p, enum check_op op, double v, double value)
{
    if (!p->t)
        return true;
    switch (op) {
    case CHECK_GT:
    case CHECK_GE: return v > p->v;
    case CHECK_LT:
    case CHECK_LE: return v < p->v;
    case CHECK_EQ:
    case CHECK_NE: break;
    }
    return !compare(p->v, op, value) && compare(v, op, value);
}

static void pick_thread(const struct check *k, json_object *doc, struct thread_pick *p)
{
    memset(p, 0, sizeof *p);
    json_object *a = array_named(doc, "threads");
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        json_object *t = json_object_array_get_idx(a, i);
        double v;
        const char *how;
        if (!thread_selected(&k->thread, t))
            continue;
        p->matched++;
        if (!thread_value(doc, t, k->thread.metric, &v, &how))
            continue;
        p->measured++;
        if (decides(p, k->op, v, k->value))
            *p = (struct thread_pick){t, v, how, p->matched, p->measured};
    }
}

/* Which of the matched threads decided, as the note says it. */
static const char *pick_word(enum check_op op)
{
    switch (op) {
    case CHECK_GT:
    case CHECK_GE: return "the highest";
    case CHECK_LT:
    case CHECK_LE: return "the lowest";
    case CHECK_EQ:
    case CHECK_NE: break;
    }
    return "one";
}

static void evaluate_thread(struct check *k, json_object *doc)
{
    struct thread_pick p;
    pick_thread(k, doc, &p);
    if (!p.t) {
        k->outcome = CHECK_NOT_MEASURED;
        if (!p.matched)
            snprintf(k->measured, sizeof k->measured,
                     "not measured in this run: no thread matched the selector [%s]",
                     k->thread.sel);
        else
            snprintf(k->measured, sizeof k->measured,
                     "not measured in this run for the %zu thread%s [%s] matched", p.matched,
                     p.matched == 1 ? "" : "s", k->thread.sel);
        return;
    }
    char many[48] = "";
    if (p.measured > 1)
        snprintf(many, sizeof many, "; %s of %zu threads", pick_word(k->op), p.measured);
    snprintf(k->measured, sizeof k->measured, "%.6g (thread %ld \"%.63s\"%s%s%s)", p.v,
             thread_tid(p.t), thread_label(p.t), *p.how ? ", " : "", p.how, many);
    k->outcome = compare(p.v, k->op, k->value) ? CHECK_FAILED : CHECK_PASSED;
}

void checks_evaluate(struct check *c, size_t n, json_object *report)
{
    for (size_t i = 0; i < n; i++) {
        struct check *k = &c[i];
        if (k->thread.by != CHECK_REPORT) {
            evaluate_thread(k, report);
            continue;
        }
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

void checks_free(struct check *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c[i].thread.by == CHECK_BY_REGEX) {
            regfree(&c[i].thread.re);
            /* what is left matches no thread: freed twice or evaluated
             * late, it is harmless */
            c[i].thread.by = CHECK_BY_TID;
            c[i].thread.tid = 0;
        }
}

/* The metric as the check names it: a report metric, or thread[SEL].METRIC. */
static void metric_text(const struct check *c, char *buf, size_t sz)
{
    if (c->thread.by == CHECK_REPORT)
        snprintf(buf, sz, "%s", c->metric->name);
    else
        snprintf(buf, sz, "thread[%s].%s", c->thread.sel, c->thread.metric->name);
}

json_object *checks_json(const struct check *c, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        char metric[160];
        metric_text(&c[i], metric, sizeof metric);
        json_object_object_add(o, "expr", json_object_new_string(c[i].expr));
        json_object_object_add(o, "metric", json_object_new_string(metric));
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
