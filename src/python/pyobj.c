#include "python/pyobj.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "python/linetable.h"

enum type_kind { TYPE_UNKNOWN = 0, TYPE_CODE = 1, TYPE_STR = 2, TYPE_OTHER = 3 };

void pyobj_cache_init(struct pyobj_cache *c)
{
    addrmap_init(&c->strings);
    addrmap_init(&c->codes);
    addrmap_init(&c->types);
    addrmap_init(&c->type_names);
    c->epoch = 0;
    c->retired = NULL;
}

void pyobj_cache_next_epoch(struct pyobj_cache *c)
{
    c->epoch++;
}

void pyobj_cache_free(struct pyobj_cache *c)
{
    for (size_t i = 0; i < c->type_names.cap; i++)
        free(c->type_names.vals[i]);
    addrmap_free(&c->type_names);
    for (size_t i = 0; i < c->strings.cap; i++)
        free(c->strings.vals[i]);
    for (size_t i = 0; i < c->codes.cap; i++) {
        struct code_info *ci = c->codes.vals[i];
        if (ci) {
            free(ci->linetable);
            free(ci);
        }
    }
    while (c->retired) {
        struct code_info *next = c->retired->retired_next;
        free(c->retired->linetable);
        free(c->retired);
        c->retired = next;
    }
    addrmap_free(&c->strings);
    addrmap_free(&c->codes);
    addrmap_free(&c->types);
}

/* What kind of type object `type` is: by address when the type symbols are
 * known, else by its tp_name (read once per type address). */
static enum type_kind type_kind(struct pyrt *rt, struct pyobj_cache *c, uint64_t type)
{
    if (type == 0)
        return TYPE_OTHER;
    if (rt->code_type && type == rt->code_type)
        return TYPE_CODE;
    if (rt->unicode_type && type == rt->unicode_type)
        return TYPE_STR;
    if (rt->code_type && rt->unicode_type)
        return TYPE_OTHER;
    uintptr_t cached = (uintptr_t)addrmap_get(&c->types, type);
    if (cached)
        return (enum type_kind)cached;
    enum type_kind k = TYPE_OTHER;
    uint64_t name_ptr;
    char name[8] = {0};
    if (remote_u64(&rt->mem, type + (uint64_t)rt->layout.type_name, &name_ptr) &&
        remote_read(&rt->mem, name_ptr, name, 5) == 0) {
        if (memcmp(name, "code", 5) == 0)
            k = TYPE_CODE;
        else if (memcmp(name, "str", 4) == 0)
            k = TYPE_STR;
    }
    addrmap_put(&c->types, type, (void *)(uintptr_t)k);
    return k;
}

/* Names from the target end up on terminals: no escape sequences, no
 * carriage returns or backspaces. Tab and line feed stay (the reports
 * that have separators replace them). */
static bool is_control(uint32_t c)
{
    return (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f;
}

static char *utf8_from_ucs(const uint8_t *data, size_t n, int kind)
{
    char *out = malloc(n * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp;
        if (kind == 1)
            cp = data[i];
        else if (kind == 2)
            cp = (uint32_t)data[2 * i] | (uint32_t)data[2 * i + 1] << 8;
        else
            memcpy(&cp, data + 4 * i, 4);
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp < 0xA0))
            cp = 0xFFFD; /* C1 controls too (8-bit CSI) */
        else if (is_control(cp))
            cp = '?';
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xC0 | cp >> 6);
            out[o++] = (char)(0x80 | (cp & 63));
        } else if (cp < 0x10000) {
            out[o++] = (char)(0xE0 | cp >> 12);
            out[o++] = (char)(0x80 | ((cp >> 6) & 63));
            out[o++] = (char)(0x80 | (cp & 63));
        } else {
            out[o++] = (char)(0xF0 | cp >> 18);
            out[o++] = (char)(0x80 | ((cp >> 12) & 63));
            out[o++] = (char)(0x80 | ((cp >> 6) & 63));
            out[o++] = (char)(0x80 | (cp & 63));
        }
    }
    out[o] = '\0';
    return out;
}

/* One read usually covers header and text of a short name. */
#define STR_FIRST_READ PY_READ_STR

char *pyobj_str_copy(struct pyrt *rt, struct pyobj_cache *c, uint64_t addr)
{
    const struct py_layout *L = &rt->layout;
    uint8_t buf[STR_FIRST_READ];
    if (addr & 7 || remote_read(&rt->mem, addr, buf, sizeof buf) != 0)
        return NULL;
    uint64_t type;
    int64_t length;
    uint32_t state;
    memcpy(&type, buf + L->obj_type, 8);
    memcpy(&length, buf + L->str_length, 8);
    memcpy(&state, buf + L->str_state, 4);
    if (type_kind(rt, c, type) != TYPE_STR || length < 0)
        return NULL;
    int kind = (state >> 2) & 7;
    bool compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
    if (!compact || (kind != 1 && kind != 2 && kind != 4))
        return NULL; /* legacy strings never name code; not worth the risk */
    size_t n = length > PYSTR_MAX_CHARS ? PYSTR_MAX_CHARS : (size_t)length;
    size_t off = (size_t)(ascii ? L->str_ascii_data : L->str_compact_data);
    size_t bytes = n * (size_t)kind;
    uint8_t *data = malloc(bytes + 1);
    if (!data)
        return NULL;
    if (off + bytes <= sizeof buf)
        memcpy(data, buf + off, bytes);
    else if (remote_read(&rt->mem, addr + off, data, bytes) != 0) {
        free(data);
        return NULL;
    }
    char *s;
    if (ascii) {
        data[bytes] = '\0';
        for (size_t i = 0; i < bytes; i++)
            if (data[i] == 0 || data[i] > 0x7f || is_control(data[i]))
                data[i] = '?';
        s = (char *)data;
    } else {
        s = utf8_from_ucs(data, n, kind);
        free(data);
    }
    return s;
}

const char *pyobj_str(struct pyrt *rt, struct pyobj_cache *c, uint64_t addr)
{
    const char *hit = addrmap_get(&c->strings, addr);
    if (hit)
        return hit;
    char *s = pyobj_str_copy(rt, c, addr);
    if (s && !addrmap_put(&c->strings, addr, s)) {
        free(s);
        return NULL;
    }
    return s;
}

static uint64_t field_u64(const uint8_t *buf, int32_t off)
{
    uint64_t v;
    memcpy(&v, buf + off, 8);
    return v;
}

static int32_t field_i32(const uint8_t *buf, int32_t off)
{
    int32_t v;
    memcpy(&v, buf + off, 4);
    return v;
}

static bool read_bytes_object(struct pyrt *rt, uint64_t addr, uint8_t **out, uint32_t *len)
{
    const struct py_layout *L = &rt->layout;
    int64_t size;
    if (remote_read(&rt->mem, addr + (uint64_t)L->bytes_size, &size, 8) != 0 || size < 0 ||
        size > LINETABLE_MAX_BYTES)
        return false;
    *out = malloc((size_t)size + 1);
    if (!*out)
        return false;
    if (size && remote_read(&rt->mem, addr + (uint64_t)L->bytes_data, *out, (size_t)size) != 0) {
        free(*out);
        *out = NULL;
        return false;
    }
    *len = (uint32_t)size;
    return true;
}

/* The code object's header up to its last field gilprobe uses (false when
 * unreadable or not a code object), and a fingerprint of those fields:
 * the same fingerprint later means the same object is still there. */
static bool read_code_header(struct pyrt *rt, struct pyobj_cache *c, uint64_t addr,
                             uint8_t *buf, size_t bufsz, uint64_t *fingerprint)
{
    const struct py_layout *L = &rt->layout;
    int32_t end = L->code_linetable;
    int32_t fields[] = {L->code_filename, L->code_name, L->code_qualname, L->code_firstlineno,
                        L->code_firsttraceable, L->obj_type, L->bytes_size};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i] > end)
            end = fields[i];
    if (addr & 7 || (size_t)end + 8 > bufsz || remote_read(&rt->mem, addr, buf, (size_t)end + 8) != 0)
        return false;
    if (type_kind(rt, c, field_u64(buf, L->obj_type)) != TYPE_CODE)
        return false;
    uint64_t h = 1469598103934665603ull;
    int32_t ptrs[] = {L->code_filename, L->code_name, L->code_qualname, L->code_linetable};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        if (ptrs[i] >= 0)
            h = (h ^ field_u64(buf, ptrs[i])) * 1099511628211ull;
    *fingerprint = (h ^ (uint64_t)(uint32_t)field_i32(buf, L->code_firstlineno)) * 1099511628211ull;
    return true;
}

struct code_info *pyobj_code(struct pyrt *rt, struct pyobj_cache *c, uint64_t addr)
{
    const struct py_layout *L = &rt->layout;
    uint8_t buf[PY_READ_CODE];
    uint64_t fp;
    struct code_info *hit = addrmap_get(&c->codes, addr);
    /* Used in this sample or the one before: a frame held it, alive. */
    if (hit && (!c->epoch || hit->seen_epoch + 1 >= c->epoch)) {
        hit->seen_epoch = c->epoch;
        return hit;
    }
    if (!read_code_header(rt, c, addr, buf, sizeof buf, &fp))
        return NULL;
    if (hit && hit->fingerprint == fp) {
        hit->seen_epoch = c->epoch;
        return hit;
    }
    if (hit) { /* another code object now lives at this address */
        addrmap_put(&c->codes, addr, NULL);
        hit->retired_next = c->retired;
        c->retired = hit;
    }
    struct code_info *ci = calloc(1, sizeof *ci);
    if (!ci)
        return NULL;
    ci->addr = addr;
    ci->fingerprint = fp;
    ci->seen_epoch = c->epoch;
    for (int k = 0; k < 4; k++)
        ci->memo_offset[k] = LONG_MIN;
    uint64_t name = field_u64(buf, L->code_qualname >= 0 ? L->code_qualname : L->code_name);
    ci->name = pyobj_str(rt, c, name);
    ci->filename = pyobj_str(rt, c, field_u64(buf, L->code_filename));
    ci->firstlineno = field_i32(buf, L->code_firstlineno);
    ci->firsttraceable = L->code_firsttraceable >= 0 ? field_i32(buf, L->code_firsttraceable) : 0;
    ci->flags = L->code_flags >= 0 ? field_i32(buf, L->code_flags) : -1;
    /* ob_size: the code units of co_code_adaptive (and of each copy). */
    uint64_t units = field_u64(buf, L->bytes_size);
    ci->ncodeunits = units < (1u << 24) ? (uint32_t)units : 0;
    if (!read_bytes_object(rt, field_u64(buf, L->code_linetable), &ci->linetable,
                           &ci->linetable_len)) {
        ci->linetable = NULL;
        ci->linetable_len = 0;
    }
    if (!ci->name || !ci->filename || !addrmap_put(&c->codes, addr, ci)) {
        free(ci->linetable);
        free(ci);
        return NULL;
    }
    return ci;
}

uint64_t pyobj_code_bytecode(struct pyrt *rt, struct code_info *ci, int32_t tlbc_index,
                             uint64_t instr)
{
    const struct py_layout *L = &rt->layout;
    uint64_t main_copy = ci->addr + (uint64_t)L->code_code_adaptive;
    uint64_t len = 2u * (uint64_t)ci->ncodeunits;
    /* A frame moves to its thread's copy (index and pointer together) on
     * its first RESUME: a read in between may see the old pointer. */
    if (tlbc_index <= 0 || L->code_tlbc < 0 || instr - main_copy < len)
        return main_copy;
    /* A copy is freed with its thread's index, and the index reused by a
     * new thread with a new copy: a remembered one must still hold instr. */
    for (int k = 0; k < 4; k++)
        if (ci->tlbc_index[k] == tlbc_index && instr - ci->tlbc_base[k] < len)
            return ci->tlbc_base[k];
    /* _PyCodeArray: Py_ssize_t size; char *entries[size]. */
    uint64_t array, size, base;
    if (!remote_u64(&rt->mem, ci->addr + (uint64_t)L->code_tlbc, &array) || !array ||
        !remote_u64(&rt->mem, array, &size) || (uint64_t)tlbc_index >= size ||
        !remote_u64(&rt->mem, array + 8u * (1u + (uint64_t)tlbc_index), &base) || !base ||
        instr - base >= len)
        return 0;
    unsigned slot = ci->tlbc_next++ % 4;
    ci->tlbc_index[slot] = tlbc_index;
    ci->tlbc_base[slot] = base;
    return base;
}

int pyobj_code_line(const struct pyrt *rt, struct code_info *ci, long offset)
{
    if (!ci->linetable)
        return offset < 0 ? ci->firstlineno : -1;
    for (int k = 0; k < 4; k++)
        if (ci->memo_offset[k] == offset)
            return ci->memo_line[k];
    int line = linetable_line(rt->layout.linetable_format, ci->linetable, ci->linetable_len,
                              ci->firstlineno, offset);
    unsigned slot = ci->memo_next++ % 4;
    ci->memo_offset[slot] = offset;
    ci->memo_line[slot] = line;
    return line;
}

bool pyobj_type_name(struct pyrt *rt, uint64_t obj, char *buf, size_t sz)
{
    const struct py_layout *L = &rt->layout;
    uint64_t type, tp_name;
    if (!sz || !obj || !remote_u64(&rt->mem, obj + (uint64_t)L->obj_type, &type) || !type ||
        !remote_u64(&rt->mem, type + (uint64_t)L->type_name, &tp_name) || !tp_name ||
        remote_read(&rt->mem, tp_name, buf, sz - 1) != 0)
        return false;
    buf[sz - 1] = 0;
    return buf[0] != 0;
}

struct type_name {
    uint64_t epoch;
    char name[33];
};

bool pyobj_type_named(struct pyrt *rt, struct pyobj_cache *c, uint64_t obj, const char *name)
{
    uint64_t type, tp_name;
    size_t n = strlen(name) + 1;
    if (n > 32 || !obj || !remote_u64(&rt->mem, obj + (uint64_t)rt->layout.obj_type, &type) || !type)
        return false;
    struct type_name *t = addrmap_get(&c->type_names, type);
    if (!t || t->epoch != c->epoch) {
        if (!t && (!(t = calloc(1, sizeof *t)) || !addrmap_put(&c->type_names, type, t))) {
            free(t);
            return pyobj_type_is(rt, obj, name);
        }
        t->epoch = c->epoch;
        memset(t->name, 0, sizeof t->name);
        /* up to 32 bytes, cut short at the end of a mapping */
        if (remote_u64(&rt->mem, type + (uint64_t)rt->layout.type_name, &tp_name) && tp_name &&
            remote_read(&rt->mem, tp_name, t->name, 32) != 0)
            remote_read(&rt->mem, tp_name, t->name, 8);
        t->name[32] = 0;
    }
    return memcmp(t->name, name, n) == 0;
}

bool pyobj_type_is(struct pyrt *rt, uint64_t obj, const char *name)
{
    char buf[33];
    size_t n = strlen(name) + 1; /* its NUL compared too */
    return n < sizeof buf && pyobj_type_name(rt, obj, buf, n + 1) && memcmp(buf, name, n) == 0;
}
