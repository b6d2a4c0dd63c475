#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>

#include "dump.h"
#include "report_common.h"

static void describe_block(const struct dump_thread *t, char *buf, size_t sz)
{
    const struct block_info *b = &t->block;
    const char *kind = block_kind_name(b->kind);
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
    if (d->snap.gil.addr)
        fprintf(out, "; switch interval %.3g ms\n", (double)d->snap.gil.interval_us / 1000.0);
    fprintf(out, "Threads: %zu Python, %zu OS\n", d->nthreads, d->os_threads);
    if (d->blocking)
        fprintf(out, "Mode: blocking (target stopped for %.2f ms)\n", (double)d->paused_us / 1000.0);
    if (d->snap.partial)
        fprintf(out, "Warning: partial snapshot: %s\n", d->snap.partial_reason);
    for (size_t i = 0; i < d->nthreads; i++) {
        const struct dump_thread *t = &d->threads[i];
        char blocked[128];
        describe_block(t, blocked, sizeof blocked);
        fprintf(out, "\nThread %d \"%s\"%s  state=%s%s%s\n", t->py->tid, t->task.comm,
                t->is_main ? " (main)" : "",
                t->task.valid ? proc_state_name(t->task.state) : "unknown",
                t->py->holds_gil ? "  holds the GIL" : "", blocked);
        if (t->py->nframes == 0)
            fprintf(out, "    (no Python frames)\n");
        for (int f = 0; f < t->py->nframes; f++) {
            char frame[1024];
            report_format_frame(&t->py->frames[f], frame, sizeof frame);
            fprintf(out, "    %s\n", frame);
        }
        if (t->py->stack_partial)
            fprintf(out, "    ... (stack incomplete: it changed while being read)\n");
    }
}

static json_object *thread_json(const struct dump_thread *t)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tid", json_object_new_int(t->py->tid));
    json_object_object_add(o, "name", json_object_new_string(t->task.comm));
    json_object_object_add(o, "is_main", json_object_new_boolean(t->is_main));
    json_object_object_add(o, "holds_gil", json_object_new_boolean(t->py->holds_gil));
    json_object_object_add(o, "state", json_object_new_string(t->task.valid
                                                                  ? proc_state_name(t->task.state)
                                                                  : "unknown"));
    const char *kind = block_kind_name(t->block.kind);
    json_object_object_add(o, "blocked_on", kind ? json_object_new_string(kind) : NULL);
    json_object_object_add(o, "syscall",
                           t->block.syscall ? json_object_new_string(t->block.syscall) : NULL);
    json_object_object_add(o, "wait_address", report_json_hex(t->block.wait_addr));
    json_object_object_add(o, "frames", report_json_frames(t->py->frames, t->py->nframes));
    json_object_object_add(o, "frames_complete", json_object_new_boolean(!t->py->stack_partial));
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
                           g->addr ? json_object_new_double((double)g->interval_us / 1000.0)
                                   : NULL);
    json_object_object_add(gil, "switch_number",
                           g->addr ? json_object_new_int64((int64_t)g->switch_number) : NULL);
    json_object_object_add(root, "gil", gil);

    json_object_object_add(root, "python_threads", json_object_new_int((int)d->nthreads));
    json_object_object_add(root, "os_threads", json_object_new_int((int)d->os_threads));
    json_object *threads = json_object_new_array();
    for (size_t i = 0; i < d->nthreads; i++)
        json_object_array_add(threads, thread_json(&d->threads[i]));
    json_object_object_add(root, "threads", threads);

    return report_json_write(out, root);
}
