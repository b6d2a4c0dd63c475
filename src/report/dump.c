#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>

#include "report/common.h"
#include "report/dump.h"
#include "report/tasks.h"

/* What a thread is blocked on: block_kind_name's words, and "idle" for a
 * futex wait that waits for work or a notification. */
static const char *blocked_name(const struct dump_thread *t)
{
    return t->idle ? "idle" : block_kind_name(t->block.kind);
}

static void describe_block(const struct dump_thread *t, char *buf, size_t sz)
{
    const struct block_info *b = &t->block;
    const char *kind = blocked_name(t);
    if (!kind) {
        buf[0] = '\0';
    } else if (b->kind == BLOCK_LOCK || b->kind == BLOCK_GIL) {
        snprintf(buf, sz, "  blocked=%s (%s 0x%" PRIx64 ")", kind, b->syscall, b->wait_addr);
    } else if (b->syscall) {
        snprintf(buf, sz, "  blocked=%s (%s)", kind, b->syscall);
    } else if (t->task.syscall_nr >= 0) {
        snprintf(buf, sz, "  blocked=%s (syscall %ld)", kind, t->task.syscall_nr);
    } else {
        snprintf(buf, sz, "  blocked=%s (not in a syscall)", kind);
    }
}

static void format_native(const struct mixed_frame *f, char *buf, size_t sz)
{
    const struct native_sym *y = f->sym;
    char where[400];
    if (y->file)
        snprintf(where, sizeof where, ", %s:%d", y->file, y->line);
    else
        where[0] = '\0';
    snprintf(buf, sz, "[native] %s (%s+0x%" PRIx64 "%s)", y->func ? y->func : "??", y->lib,
             y->offset, where);
}

static void native_text(FILE *out, const struct dump_native *dn, enum block_kind kind)
{
    if (!dn->ok) {
        fprintf(out, "    (no native stack: %s)\n", dn->why);
        return;
    }
    const char *st = native_state_name(dn->state);
    const char *bk = block_kind_name(kind);
    if (!st)
        fprintf(out, "    native stack: nothing on it says what the thread waits for\n");
    else if (dn->agrees)
        fprintf(out, "    native stack: %s%s%s\n", st, bk ? ", agrees with the syscall: " : "",
                bk ? bk : "");
    else
        fprintf(out, "    native stack: %s, DISAGREES with the syscall-based %s\n", st,
                bk ? bk : "running");
    for (int f = 0; f < dn->mixed.n; f++) {
        char frame[1024];
        if (dn->mixed.f[f].sym)
            format_native(&dn->mixed.f[f], frame, sizeof frame);
        else
            stack_frame_text(&dn->mixed.f[f].py, frame, sizeof frame);
        fprintf(out, "    %s\n", frame);
    }
    if (dn->stack->truncated)
        fprintf(out, "    ... (native stack incomplete: the unwind stopped early)\n");
    if (dn->mixed.approximate)
        fprintf(out, "    (Python frames placed at the outermost eval frame: not matched one by "
                     "one)\n");
}

/* The process's own name: its main thread's, which threads inherit. */
static const char *process_name(const struct dump *d)
{
    for (size_t i = 0; i < d->nthreads; i++)
        if (d->threads[i].is_main)
            return d->threads[i].task.comm;
    return NULL;
}


void report_dump_text(FILE *out, const struct dump *d)
{
    const struct pyrt *rt = d->rt;
    fprintf(out, "Process %d: %s\n", d->pid, d->cmdline);
    report_python_line(out, rt);
    if (!d->snap.gil.addr)
        fprintf(out, "GIL: unknown (could not be read)\n");
    else if (!d->snap.gil.enabled)
        fprintf(out, "GIL: disabled (free-threaded build)");
    else if (d->snap.gil.holder)
        fprintf(out, "GIL: held by thread %d", d->gil_holder_tid);
    else
        fprintf(out, "GIL: free");
    if (d->snap.gil.addr && d->snap.gil.counters_known)
        fprintf(out, "; switch interval %.3g ms\n", (double)d->snap.gil.interval_us / 1000.0);
    else if (d->snap.gil.addr)
        fprintf(out, "; switch interval not measured (%s)\n", REPORT_UNPUBLISHED);
    fprintf(out, "Threads: %zu Python, %zu OS\n", d->nthreads, d->os_threads);
    if (d->blocking)
        fprintf(out, "Mode: blocking (target stopped for %.2f ms)\n", (double)d->paused_us / 1000.0);
    if (d->native)
        fprintf(out, "Native: %u threads stopped one at a time, %.3f ms in all, %.3f ms at most\n",
                d->native_stops, (double)d->native_pause_total_ns / 1e6,
                (double)d->native_pause_max_ns / 1e6);
    if (d->snap.partial)
        fprintf(out, "Warning: partial snapshot: %s\n", d->snap.partial_reason);
    for (size_t i = 0; i < d->nthreads; i++) {
        const struct dump_thread *t = &d->threads[i];
        char blocked[128];
        describe_block(t, blocked, sizeof blocked);
        char name[THREAD_NAME_MAX + 24];
        thread_display_name(t->python_name, t->task.comm, process_name(d), name, sizeof name);
        fprintf(out, "\nThread %d \"%s\"%s  state=%s%s%s\n", t->py->tid, name,
                t->is_main ? " (main)" : "",
                t->task.valid ? proc_state_name(t->task.state) : "unknown",
                t->py->holds_gil ? "  holds the GIL" : "", blocked);
        if (t->native) {
            native_text(out, t->native, t->block.kind);
            continue;
        }
        if (t->py->nframes == 0)
            fprintf(out, "    (no Python frames)\n");
        for (int f = 0; f < t->py->nframes; f++) {
            char frame[1024];
            stack_frame_text(&t->py->frames[f], frame, sizeof frame);
            fprintf(out, "    %s\n", frame);
        }
        if (t->py->stack_partial)
            fprintf(out, "    ... (stack incomplete: it changed while being read)\n");
    }
    for (size_t i = 0; i < d->nnative_only; i++) {
        const struct dump_native_thread *t = &d->native_only[i];
        char blocked[128];
        struct dump_thread tmp = {.task = t->task, .block = t->block};
        describe_block(&tmp, blocked, sizeof blocked);
        fprintf(out, "\nThread %d \"%s\" (native only: no Python thread state)  state=%s%s\n",
                t->task.tid, t->task.comm, proc_state_name(t->task.state), blocked);
        native_text(out, &t->native, t->block.kind);
    }
    if (d->want_tasks)
        report_tasks_text(out, &d->tasks);
}

static json_object *native_json(const struct dump_native *dn, enum block_kind kind)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(dn->ok));
    json_object_object_add(o, "error", dn->ok ? NULL : json_object_new_string(dn->why));
    if (!dn->ok)
        return o;
    const char *st = native_state_name(dn->state);
    json_object_object_add(o, "state", st ? json_object_new_string(st) : NULL);
    json_object_object_add(o, "agrees_with_syscall", json_object_new_boolean(dn->agrees));
    json_object_object_add(o, "syscall_state",
                           block_kind_name(kind) ? json_object_new_string(block_kind_name(kind))
                                                 : NULL);
    json_object_object_add(o, "pause_ms", json_object_new_double((double)dn->stack->pause_ns / 1e6));
    json_object_object_add(o, "truncated", json_object_new_boolean(dn->stack->truncated));
    json_object_object_add(o, "approximate", json_object_new_boolean(dn->mixed.approximate));
    json_object *frames = json_object_new_array();
    for (int i = 0; i < dn->mixed.n; i++) {
        const struct mixed_frame *f = &dn->mixed.f[i];
        json_object *jf;
        if (!f->sym) {
            jf = report_json_frame(&f->py);
            json_object_object_add(jf, "kind", json_object_new_string("python"));
        } else {
            jf = json_object_new_object();
            json_object_object_add(jf, "kind", json_object_new_string("native"));
            json_object_object_add(jf, "function",
                                   f->sym->func ? json_object_new_string(f->sym->func) : NULL);
            json_object_object_add(jf, "library", json_object_new_string(f->sym->lib));
            json_object_object_add(jf, "offset", report_json_hex(f->sym->offset));
            json_object_object_add(jf, "address", report_json_hex(f->ip));
            json_object_object_add(jf, "file",
                                   f->sym->file ? json_object_new_string(f->sym->file) : NULL);
            json_object_object_add(jf, "line",
                                   f->sym->line >= 0 ? json_object_new_int(f->sym->line) : NULL);
        }
        json_object_array_add(frames, jf);
    }
    json_object_object_add(o, "frames", frames);
    return o;
}

static json_object *thread_json(const struct dump_thread *t)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tid", json_object_new_int(t->py->tid));
    json_object_object_add(o, "name", json_object_new_string(t->task.comm));
    report_json_python_name(o, t->python_name, t->python_name_why);
    json_object_object_add(o, "is_main", json_object_new_boolean(t->is_main));
    json_object_object_add(o, "holds_gil", json_object_new_boolean(t->py->holds_gil));
    json_object_object_add(o, "state", json_object_new_string(t->task.valid
                                                                  ? proc_state_name(t->task.state)
                                                                  : "unknown"));
    const char *kind = blocked_name(t);
    json_object_object_add(o, "blocked_on", kind ? json_object_new_string(kind) : NULL);
    json_object_object_add(o, "syscall",
                           t->block.syscall ? json_object_new_string(t->block.syscall) : NULL);
    json_object_object_add(o, "wait_address", report_json_hex(t->block.wait_addr));
    json_object_object_add(o, "frames", report_json_frames(t->py->frames, t->py->nframes));
    json_object_object_add(o, "frames_complete", json_object_new_boolean(!t->py->stack_partial));
    if (t->native)
        json_object_object_add(o, "native", native_json(t->native, t->block.kind));
    return o;
}

int report_dump_json(FILE *out, const struct dump *d)
{
    const struct pyrt *rt = d->rt;
    json_object *root = json_object_new_object();
    json_object_object_add(root, "schema", json_object_new_int(DUMP_SCHEMA_VERSION));
    json_object_object_add(root, "command", json_object_new_string("dump"));
    json_object_object_add(root, "pid", json_object_new_int(d->pid));
    json_object_object_add(root, "cmdline", json_object_new_string(d->cmdline));
    json_object_object_add(root, "blocking", json_object_new_boolean(d->blocking));
    json_object_object_add(root, "paused_ms",
                           d->blocking ? json_object_new_double((double)d->paused_us / 1000.0)
                                       : NULL);
    json_object_object_add(root, "partial", json_object_new_boolean(d->snap.partial));
    json_object_object_add(root, "partial_reason",
                           d->snap.partial ? json_object_new_string(d->snap.partial_reason) : NULL);

    json_object_object_add(root, "python", report_json_python(rt));

    json_object *gil = json_object_new_object();
    const struct gil_state *g = &d->snap.gil;
    json_object_object_add(gil, "address", report_json_hex(g->addr));
    json_object_object_add(gil, "free_threaded", json_object_new_boolean(rt->free_threaded));
    json_object_object_add(gil, "enabled", g->addr ? json_object_new_boolean(g->enabled) : NULL);
    json_object_object_add(gil, "locked", g->addr ? json_object_new_boolean(g->locked == 1) : NULL);
    json_object_object_add(gil, "holder_tid",
                           d->gil_holder_tid ? json_object_new_int(d->gil_holder_tid) : NULL);
    json_object_object_add(gil, "switch_interval_ms",
                           g->addr && g->counters_known
                               ? json_object_new_double((double)g->interval_us / 1000.0)
                               : NULL);
    json_object_object_add(gil, "switch_number",
                           g->addr && g->counters_known
                               ? json_object_new_int64((int64_t)g->switch_number)
                               : NULL);
    json_object_object_add(root, "gil", gil);

    json_object_object_add(root, "python_threads", json_object_new_int((int)d->nthreads));
    json_object_object_add(root, "os_threads", json_object_new_int((int)d->os_threads));
    json_object *threads = json_object_new_array();
    for (size_t i = 0; i < d->nthreads; i++)
        json_object_array_add(threads, thread_json(&d->threads[i]));
    json_object_object_add(root, "threads", threads);
    if (d->want_tasks)
        json_object_object_add(root, "tasks", report_tasks_json(&d->tasks));
    if (d->native) {
        json_object *only = json_object_new_array();
        for (size_t i = 0; i < d->nnative_only; i++) {
            const struct dump_native_thread *t = &d->native_only[i];
            json_object *o = json_object_new_object();
            json_object_object_add(o, "tid", json_object_new_int(t->task.tid));
            json_object_object_add(o, "name", json_object_new_string(t->task.comm));
            json_object_object_add(o, "state",
                                   json_object_new_string(proc_state_name(t->task.state)));
            const char *kind = block_kind_name(t->block.kind);
            json_object_object_add(o, "blocked_on", kind ? json_object_new_string(kind) : NULL);
            json_object_object_add(o, "native", native_json(&t->native, t->block.kind));
            json_object_array_add(only, o);
        }
        json_object_object_add(root, "native_only_threads", only);
        json_object *pause = json_object_new_object();
        json_object_object_add(pause, "threads_stopped", json_object_new_int((int)d->native_stops));
        json_object_object_add(pause, "total_ms",
                               json_object_new_double((double)d->native_pause_total_ns / 1e6));
        json_object_object_add(pause, "max_ms",
                               json_object_new_double((double)d->native_pause_max_ns / 1e6));
        json_object_object_add(root, "native_pause", pause);
    }

    return report_json_write(out, root);
}
