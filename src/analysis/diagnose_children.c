#include "analysis/diagnose_children.h"

#include <stdio.h>
#include <string.h>

static const char *str(json_object *o, const char *key)
{
    json_object *x;
    return json_object_object_get_ex(o, key, &x) && json_object_is_type(x, json_type_string)
               ? json_object_get_string(x)
               : "";
}

static enum severity severity_of(const char *s)
{
    return strcmp(s, "critical") == 0 ? SEV_CRITICAL
           : strcmp(s, "warning") == 0 ? SEV_WARNING
                                       : SEV_INFO;
}

/* The first evidence value: the figure its rule is about (stalled %,
 * waiters, ...), to tell the worse of two findings of equal severity. */
static double first_value(json_object *f)
{
    json_object *ev, *x;
    if (!json_object_object_get_ex(f, "evidence", &ev) || !json_object_is_type(ev, json_type_array) ||
        json_object_array_length(ev) == 0 ||
        !json_object_object_get_ex(json_object_array_get_idx(ev, 0), "value", &x))
        return 0;
    return json_object_get_double(x);
}

struct group {
    const char *scenario, *title;
    json_object *worst;   /* that child's finding */
    pid_t worst_pid;
    pid_t pids[FINDING_MAX_CHILDREN];
    int npids;
};

static bool worse(json_object *a, json_object *b)
{
    enum severity x = severity_of(str(a, "severity")), y = severity_of(str(b, "severity"));
    return x != y ? x > y : first_value(a) > first_value(b);
}

static void add_pid(struct group *g, pid_t pid)
{
    for (int i = 0; i < g->npids; i++)
        if (g->pids[i] == pid)
            return;
    if (g->npids < FINDING_MAX_CHILDREN)
        g->pids[g->npids++] = pid;
}

static void emit(struct diagnosis *d, const struct group *g, int sampled)
{
    struct finding *f = diagnose_add(d, g->scenario, g->title, severity_of(str(g->worst, "severity")));
    if (!f)
        return;
    f->children[f->nchildren++] = g->worst_pid;
    for (int i = 0; i < g->npids; i++)
        if (g->pids[i] != g->worst_pid && f->nchildren < FINDING_MAX_CHILDREN)
            f->children[f->nchildren++] = g->pids[i];
    f->children_sampled = sampled;
    char pids[160] = "";
    for (int i = 0; i < f->nchildren; i++) {
        size_t used = strlen(pids);
        snprintf(pids + used, sizeof pids - used, "%s%d", i ? ", " : "", f->children[i]);
    }
    snprintf(f->verdict, sizeof f->verdict, "in %d of %d sampled subprocesses (PID %s); the worst, "
             "PID %d: %s", f->nchildren, sampled, pids, g->worst_pid, str(g->worst, "verdict"));
    snprintf(f->culprit, sizeof f->culprit, "in PID %d: %s", g->worst_pid, str(g->worst, "culprit"));
    snprintf(f->advice, sizeof f->advice, "%s", str(g->worst, "advice"));
    json_object *ev;
    if (!json_object_object_get_ex(g->worst, "evidence", &ev) || !json_object_is_type(ev, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(ev); i++) {
        json_object *e = json_object_array_get_idx(ev, i), *v, *t;
        if (!json_object_object_get_ex(e, "value", &v) || !json_object_object_get_ex(e, "threshold", &t))
            continue;
        diagnose_evidence(f, str(e, "metric"), json_object_get_double(v), str(e, "op"),
                          json_object_get_double(t));
    }
}

void diagnose_add_children(struct diagnosis *d, json_object *const *children, int n)
{
    struct group groups[DIAGNOSE_MAX_FINDINGS];
    int ngroups = 0, sampled = 0;
    for (int c = 0; c < n; c++) {
        json_object *report = children[c], *x, *findings;
        if (!report)
            continue;
        sampled++;
        pid_t pid = json_object_object_get_ex(report, "pid", &x) ? json_object_get_int(x) : 0;
        if (!json_object_object_get_ex(report, "findings", &findings) ||
            !json_object_is_type(findings, json_type_array))
            continue;
        for (size_t i = 0; i < json_object_array_length(findings); i++) {
            json_object *f = json_object_array_get_idx(findings, i);
            const char *scenario = str(f, "scenario"), *title = str(f, "title");
            if (!scenario[0])
                continue;
            struct group *g = NULL;
            for (int k = 0; k < ngroups && !g; k++)
                if (strcmp(groups[k].scenario, scenario) == 0 && strcmp(groups[k].title, title) == 0)
                    g = &groups[k];
            if (!g) {
                if (ngroups == DIAGNOSE_MAX_FINDINGS)
                    continue;
                g = &groups[ngroups++];
                *g = (struct group){.scenario = scenario, .title = title, .worst = f,
                                    .worst_pid = pid};
            } else if (worse(f, g->worst)) {
                g->worst = f;
                g->worst_pid = pid;
            }
            add_pid(g, pid);
        }
    }
    for (int k = 0; k < ngroups; k++)
        emit(d, &groups[k], sampled);
    diagnose_sort(d);
}
