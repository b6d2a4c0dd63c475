#include "report/common.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "util/errors.h"

const char *report_runtime_kind(const struct pyrt *rt)
{
    return rt->shared ? "libpython shared" : "static executable";
}

void report_python_line(FILE *out, const struct pyrt *rt)
{
    fprintf(out, "Python %s (%s %s, %s%s%s)\n", rt->version, report_runtime_kind(rt), rt->binary,
            rt->stripped ? "stripped" : "with symbols",
            rt->found_by_section ? ", found by .PyRuntime section" : "",
            rt->unknown_version ? "; untested version, read through its _Py_DebugOffsets" : "");
}

json_object *report_json_hex(uint64_t v)
{
    if (!v)
        return NULL;
    char buf[24];
    snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return json_object_new_string(buf);
}

void report_json_python_name(json_object *thread, const char *python_name, const char *why)
{
    json_object_object_add(thread, "python_name",
                           python_name[0] ? json_object_new_string(python_name) : NULL);
    json_object_object_add(thread, "python_name_unavailable",
                           why ? json_object_new_string(why) : NULL);
}

json_object *report_json_python(const struct pyrt *rt)
{
    json_object *py = json_object_new_object();
    json_object_object_add(py, "version", json_object_new_string(rt->version));
    json_object_object_add(py, "version_hex", json_object_new_int64(rt->version_hex));
    json_object_object_add(py, "version_source", json_object_new_string(rt->version_source));
    json_object_object_add(py, "runtime", json_object_new_string(report_runtime_kind(rt)));
    json_object_object_add(py, "binary", json_object_new_string(rt->binary));
    json_object_object_add(py, "stripped", json_object_new_boolean(rt->stripped));
    json_object_object_add(py, "found_by", json_object_new_string(rt->found_by_section
                                                                      ? ".PyRuntime section"
                                                                      : "_PyRuntime symbol"));
    json_object_object_add(py, "runtime_address", report_json_hex(rt->runtime));
    json_object_object_add(py, "layout",
                           json_object_new_string(rt->unknown_version ? "_Py_DebugOffsets only"
                                                  : rt->debug_offsets ? "_Py_DebugOffsets"
                                                                      : "generated table"));
    json_object_object_add(py, "untested_version", json_object_new_boolean(rt->unknown_version));
    return py;
}

json_object *report_json_frame(const struct py_frame *f)
{
    json_object *jf = json_object_new_object();
    json_object_object_add(jf, "function", json_object_new_string(f->code->name));
    json_object_object_add(jf, "file", json_object_new_string(f->code->filename));
    json_object_object_add(jf, "line", f->line >= 0 ? json_object_new_int(f->line) : NULL);
    return jf;
}

json_object *report_json_frames(const struct py_frame *f, int n)
{
    json_object *frames = json_object_new_array();
    for (int i = 0; i < n; i++)
        json_object_array_add(frames, report_json_frame(&f[i]));
    return frames;
}

json_object *report_json_site(const struct stack_entry *e)
{
    if (!e || !e->nframes)
        return NULL;
    int py = stack_python_top(e);
    json_object *j = report_json_frame(&e->frames[py > 0 ? py : 0]);
    if (py > 0)
        json_object_object_add(j, "native", report_json_frame(&e->frames[0]));
    return j;
}

int report_write(const char *path, bool json, int (*as_json)(FILE *, const void *),
                 void (*as_text)(FILE *, const void *), const void *report, struct gp_error *err)
{
    return report_write_to(stdout, path, json, as_json, as_text, report, err);
}

int report_write_to(FILE *dflt, const char *path, bool json, int (*as_json)(FILE *, const void *),
                    void (*as_text)(FILE *, const void *), const void *report,
                    struct gp_error *err)
{
    FILE *out = dflt;
    if (path && !(out = fopen(path, "we"))) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write %s: %s; choose a writable path", path,
                     strerror(errno));
        return err->code;
    }
    int r = 0;
    if (json)
        r = as_json(out, report);
    else
        as_text(out, report);
    if (fflush(out) != 0 || ferror(out))
        r = -1;
    if (out != dflt && fclose(out) != 0)
        r = -1;
    if (r < 0) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write the report to %s: %s",
                     path ? path : dflt == stderr ? "standard error" : "standard output",
                     strerror(errno));
        return err->code;
    }
    return GP_OK;
}

int report_json_write(FILE *out, json_object *root)
{
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    int r = fprintf(out, "%s\n", text) < 0 ? -1 : 0;
    json_object_put(root);
    return r;
}
