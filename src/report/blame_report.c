#include "report/blame_report.h"

#include <stdio.h>
#include <string.h>

/* Threads listed in the text report's blame section, most waiting first. */
#define BLAME_TEXT_THREADS 5
/* Below this share an entry is noise in the text report. */
#define BLAME_TEXT_MIN_PCT 2.0

const char *report_holder_name(const struct run_metrics *m, pid_t tid)
{
    for (uint32_t i = 0; tid && i < m->nthreads; i++)
        if (m->threads[i].tid == tid)
            return m->threads[i].python_name[0] ? m->threads[i].python_name : m->threads[i].name;
    return NULL;
}

const char *report_role_name(enum thread_role r)
{
    return r == ROLE_VICTIM ? "victim" : r == ROLE_AGGRESSOR ? "aggressor" : NULL;
}

static double share(const struct blame_list *l, const struct blame_entry *e)
{
    return l->total_ms > 0 ? 100.0 * e->ms / l->total_ms : 0;
}

static json_object *list_json(const struct run_metrics *m, const struct blame_list *l)
{
    json_object *a = json_object_new_array();
    for (uint32_t i = 0; i < l->n && i < BLAME_REPORT_ENTRIES; i++) {
        const struct blame_entry *e = &l->v[i];
        json_object *o = json_object_new_object();
        const char *name = report_holder_name(m, e->holder_tid);
        char site[512];
        blame_site_text(e, site, sizeof site);
        json_object_object_add(o, "holder_tid", e->holder_tid ? json_object_new_int(e->holder_tid)
                                                              : NULL);
        json_object_object_add(o, "holder_name", name ? json_object_new_string(name) : NULL);
        json_object_object_add(o, "site", site[0] ? json_object_new_string(site) : NULL);
        json_object_object_add(o, "wait_ms", json_object_new_double(e->ms));
        json_object_object_add(o, "share_pct", json_object_new_double(share(l, e)));
        json_object_array_add(a, o);
    }
    return a;
}

void report_thread_blame_json(json_object *o, const struct run_metrics *m,
                              const struct thread_metrics *t)
{
    const struct blame_list *l = t->blame ? t->blame : &t->blame_sampled;
    json_object_object_add(o, "gil_wait_blame", list_json(m, l));
    json_object_object_add(o, "gil_wait_blame_source",
                           l->total_ms > 0 ? json_object_new_string(t->blame_exact ? "exact"
                                                                                   : "sampled")
                                           : NULL);
    json_object_object_add(o, "gil_wait_blame_sampled", list_json(m, &t->blame_sampled));
    json_object_object_add(o, "gil_wait_caused_ms", json_object_new_double(t->caused_ms));
    const char *role = report_role_name(t->role);
    json_object_object_add(o, "role", role ? json_object_new_string(role) : NULL);
}

/* "1234 crunch-0 in crunch_regex (a.py:3)", or what is known of it. */
static void holder_text(char *buf, size_t sz, const struct run_metrics *m,
                        const struct blame_entry *e)
{
    char site[512];
    blame_site_text(e, site, sizeof site);
    const char *name = report_holder_name(m, e->holder_tid);
    if (!e->holder_tid && !e->code_addr)
        snprintf(buf, sz, "no thread seen holding it (hand-offs, or threads folded together)");
    else if (!e->holder_tid)
        snprintf(buf, sz, "an unknown thread in %s", site);
    else
        snprintf(buf, sz, "%d %s in %s", e->holder_tid, name ? name : "(gone)",
                 site[0] ? site : "(no Python frame)");
}

void report_blame_text(FILE *out, const struct run_metrics *m)
{
    bool header = false;
    uint32_t shown = 0;
    for (uint32_t k = 0; k < m->nthreads && shown < BLAME_TEXT_THREADS; k++) {
        const struct thread_metrics *t = &m->threads[m->thread_order ? m->thread_order[k] : k];
        const struct blame_list *l = t->blame;
        if (!l || l->total_ms <= 0 || !l->n)
            continue;
        if (!header)
            fprintf(out, "\n  Waits behind (whom each thread's GIL wait was spent behind; %s):\n",
                     t->blame_exact ? "exact, eBPF" : "sampled");
        header = true;
        shown++;
        const char *role = report_role_name(t->role);
        fprintf(out, "  %d %s%s%s%s: waited %.0f ms for the GIL, p99 %.3g ms\n", t->tid, t->display,
                role ? " (" : "", role ? role : "", role ? ")" : "", t->wait_ms, t->wait_p99_ms);
        for (uint32_t i = 0; i < l->n && i < BLAME_REPORT_ENTRIES; i++) {
            if (share(l, &l->v[i]) < BLAME_TEXT_MIN_PCT)
                continue;
            char who[768];
            holder_text(who, sizeof who, m, &l->v[i]);
            fprintf(out, "    %5.1f%%  %8.1f ms  behind %s\n", share(l, &l->v[i]), l->v[i].ms,
                    who);
        }
    }
}

void report_blame_line(char *buf, size_t sz, const struct run_metrics *m,
                       const struct thread_metrics *t)
{
    const struct blame_list *l = t->blame;
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; l && i < l->n && i < 3 && used + 1 < sz; i++) {
        const struct blame_entry *e = &l->v[i];
        if (share(l, e) < BLAME_TEXT_MIN_PCT)
            continue;
        char site[512];
        blame_site_text(e, site, sizeof site);
        const char *name = report_holder_name(m, e->holder_tid);
        int w = snprintf(buf + used, sz - used, "%s%s %s %.0f%%", used ? ", " : "",
                         e->holder_tid ? (name ? name : "(gone)") : "(hand-off)",
                         e->code ? e->code->name : "", share(l, e));
        if (w < 0)
            break;
        used += (size_t)w < sz - used ? (size_t)w : sz - used - 1;
    }
}

static json_object *code_site_json(const struct code_info *c)
{
    if (!c)
        return NULL;
    char site[512];
    struct blame_entry e = {.code = (struct code_info *)c};
    blame_site_text(&e, site, sizeof site);
    return json_object_new_string(site);
}

static json_object *named(const struct run_metrics *m, pid_t tid)
{
    const char *name = report_holder_name(m, tid);
    return name ? json_object_new_string(name) : NULL;
}

static json_object *roles_json(const struct run_metrics *m, const struct finding_thread *v, int n,
                               bool victims)
{
    if (!n)
        return NULL;
    json_object *a = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "tid", json_object_new_int(v[i].tid));
        json_object_object_add(o, "name", named(m, v[i].tid));
        if (victims) {
            json_object_object_add(o, "gil_wait_p99_ms", json_object_new_double(v[i].value));
        } else {
            json_object_object_add(o, "site", code_site_json(v[i].code));
            json_object_object_add(o, "caused_pct", json_object_new_double(v[i].value));
        }
        json_object_array_add(a, o);
    }
    return a;
}

void report_finding_blame_json(json_object *j, const struct run_metrics *m,
                               const struct finding *f)
{
    json_object_object_add(j, "victims", roles_json(m, f->victims, f->nvictims, true));
    json_object_object_add(j, "aggressors", roles_json(m, f->aggressors, f->naggressors, false));
    json_object *c = NULL;
    if (f->has_convoy) {
        const struct convoy_figures *x = &f->convoy;
        c = json_object_new_object();
        json_object_object_add(c, "tid", json_object_new_int(x->tid));
        json_object_object_add(c, "name", named(m, x->tid));
        json_object_object_add(c, "wakeups_per_s", json_object_new_double(x->wakeups_per_s));
        json_object_object_add(c, "cap_per_s", json_object_new_double(x->wakeups_per_s));
        json_object_object_add(c, "cap_model_per_s", json_object_new_double(x->cap_model_per_s));
        json_object_object_add(c, "switch_interval_ms", json_object_new_double(x->interval_ms));
        json_object_object_add(c, "waits_per_wakeup", x->waits_per_wakeup >= 0
                                                           ? json_object_new_double(
                                                                 x->waits_per_wakeup)
                                                           : NULL);
        json_object_object_add(c, "wait_mean_ms", json_object_new_double(x->wait_mean_ms));
        json_object_object_add(c, "burst_ms", json_object_new_double(x->burst_ms));
        json_object_object_add(c, "holder_tid", json_object_new_int(x->holder));
        json_object_object_add(c, "holder_name", named(m, x->holder));
        json_object_object_add(c, "holder_site", code_site_json(x->holder_code));
    }
    json_object_object_add(j, "convoy", c);
}
