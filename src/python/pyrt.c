#include "python/pyrt.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "python/debug_offsets.h"
#include "target/elfsym.h"

#define VERSION_SCAN_MAX (16u << 20)
#define PTHREAD_SCAN_BYTES 2048

unsigned pyrt_parse_version(const char *s)
{
    unsigned maj, min, mic;
    int n = 0;
    if (sscanf(s, "%u.%u.%u%n", &maj, &min, &mic, &n) != 3 || maj != 3 || min > 99 || mic > 99)
        return 0;
    unsigned level = 0xF, serial = 0;
    const char *p = s + n;
    if (*p == 'a' || *p == 'b' || (p[0] == 'r' && p[1] == 'c')) {
        level = *p == 'a' ? 0xA : *p == 'b' ? 0xB : 0xC;
        p += *p == 'r' ? 2 : 1;
        serial = (unsigned)strtoul(p, NULL, 10) & 0xF;
    }
    return maj << 24 | min << 16 | mic << 8 | level << 4 | serial;
}

void pyrt_format_version(unsigned hex, char *out, size_t outsz)
{
    unsigned level = (hex >> 4) & 0xF, serial = hex & 0xF;
    const char *tag = level == 0xA ? "a" : level == 0xB ? "b" : level == 0xC ? "rc" : "";
    if (*tag)
        snprintf(out, outsz, "%u.%u.%u%s%u", hex >> 24, (hex >> 16) & 0xff, (hex >> 8) & 0xff, tag,
                 serial);
    else
        snprintf(out, outsz, "%u.%u.%u", hex >> 24, (hex >> 16) & 0xff, (hex >> 8) & 0xff);
}

static const char *basename_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* libpython3.X[t][m].so* or python3.X */
static int minor_from_name(const char *path, bool *is_lib)
{
    const char *b = basename_of(path);
    *is_lib = strncmp(b, "libpython", 9) == 0;
    const char *p = *is_lib ? b + 9 : (strncmp(b, "python", 6) == 0 ? b + 6 : NULL);
    if (!p)
        return -1;
    if (p[0] == '2' && p[1] == '.')
        return 200 + atoi(p + 2); /* Python 2: flagged by the caller */
    if (p[0] != '3' || p[1] != '.' || !isdigit((unsigned char)p[2]))
        return -1;
    return atoi(p + 2);
}


struct candidate {
    const struct proc_map *map; /* the offset-0 mapping of the file */
    bool is_lib;
    int minor_hint;
};

static bool read_cstr(struct pyrt *rt, uint64_t addr, char *buf, size_t sz)
{
    if (remote_read(&rt->mem, addr, buf, sz - 1) != 0)
        return false;
    buf[sz - 1] = '\0';
    return true;
}

/* The static buffer Py_GetVersion() fills at start-up ("3.9.18 (main, ..."),
 * or a scan of the file's writable data for that text when stripped. */
static unsigned version_from_text(struct pyrt *rt, struct elf_file *ef, uint64_t bias,
                                  const struct proc_maps *maps, const struct proc_map *m0)
{
    static const char *names[] = {"version", "version.0", "version.1"};
    char buf[64];
    for (size_t i = 0; i < 3; i++) {
        uint64_t v, sz;
        if (elf_file_symbol(ef, names[i], &v, &sz) && read_cstr(rt, bias + v, buf, sizeof buf)) {
            unsigned hex = pyrt_parse_version(buf);
            if (hex && strstr(buf, " ("))
                return hex;
        }
    }
    regex_t re;
    if (regcomp(&re, "^[23]\\.[0-9]+\\.[0-9]+[abrc0-9+]* \\(", REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    unsigned found = 0;
    size_t scanned = 0;
    /* Writable mappings of the file, and the anonymous .bss right after. */
    for (size_t i = 0; i < maps->n && !found && scanned < VERSION_SCAN_MAX; i++) {
        const struct proc_map *m = &maps->v[i];
        bool ours = strcmp(m->path, m0->path) == 0;
        bool bss = !m->path[0] && i > 0 && strcmp(maps->v[i - 1].path, m0->path) == 0;
        if (!(ours || bss) || m->perms[1] != 'w')
            continue;
        size_t len = (size_t)(m->end - m->start);
        if (len > VERSION_SCAN_MAX - scanned)
            len = VERSION_SCAN_MAX - scanned;
        char *data = malloc(len + 1);
        if (!data)
            break;
        if (remote_read(&rt->mem, m->start, data, len) == 0) {
            data[len] = '\0';
            for (size_t k = 0; k + 8 < len && !found; k++) {
                if (data[k] != '3' || data[k + 1] != '.' || (k && data[k - 1] != '\0'))
                    continue;
                char tmp[48];
                snprintf(tmp, sizeof tmp, "%.47s", data + k);
                if (regexec(&re, tmp, 0, NULL, 0) == 0)
                    found = pyrt_parse_version(tmp);
            }
        }
        scanned += len;
        free(data);
    }
    regfree(&re);
    return found;
}

void pyrt_overlay_debug_offsets(struct pyrt *rt)
{
    struct py_layout *L = &rt->layout;
    if (L->dbg_size <= 0 || L->dbg_size > 4096)
        return;
    uint8_t table[4096];
    if (remote_read(&rt->mem, rt->runtime, table, (size_t)L->dbg_size) != 0)
        return;
    /* Values are offsets inside structs of at most a few hundred KiB; any
     * other value means the table is not what we think it is. */
#define X(name)                                                        \
    if (L->dbg_##name >= 0) {                                          \
        uint64_t v;                                                    \
        memcpy(&v, table + L->dbg_##name, 8);                          \
        if (v >= (1u << 20))                                           \
            return;                                                    \
    }
    PY_DEBUG_FIELDS(X)
#undef X
    struct py_layout merged = *L;
#define X(name)                                                        \
    if (L->dbg_##name >= 0) {                                          \
        uint64_t v;                                                    \
        memcpy(&v, table + L->dbg_##name, 8);                          \
        merged.name = (int32_t)v;                                      \
    }
    PY_DEBUG_FIELDS(X)
#undef X
    /* Offsets that do not fit the reads gilprobe makes would send those
     * reads past their buffers: keep the generated layout then. */
    if (py_layout_check(&merged))
        return;
    *L = merged;
    rt->debug_offsets = true;
}

/* struct pthread.tid differs between libc versions: its candidates are the
 * fields of the main thread's pthread that hold the main thread's TID. In a
 * PID namespace that TID is 1, a common value, hence several candidates. */
static void find_pthread_tid_candidates(struct pyrt *rt)
{
    uint64_t main_pthread;
    int32_t words[PTHREAD_SCAN_BYTES / 4];
    rt->pthread_tid_ncands = 0;
    if (!remote_u64(&rt->mem, rt->runtime + (uint64_t)rt->layout.rt_main_thread, &main_pthread) ||
        remote_read(&rt->mem, main_pthread, words, sizeof words) != 0)
        return;
    for (size_t i = 0; i < PTHREAD_SCAN_BYTES / 4 && rt->pthread_tid_ncands < 16; i++)
        if (words[i] == rt->ns_pid)
            rt->pthread_tid_cands[rt->pthread_tid_ncands++] = (int)(i * 4);
}

static int unsupported(struct gp_error *err, pid_t pid, const char *version)
{
    gp_error_set(err, GP_ERR_UNSUPPORTED,
                 "process %d runs Python %s, which gilprobe does not support (supported: %s); "
                 "use a supported interpreter or a newer gilprobe",
                 pid, version, py_layout_supported_list());
    return err->code;
}

uint64_t pyrt_main_interp(struct pyrt *rt)
{
    const struct py_layout *L = &rt->layout;
    uint64_t interp = 0;
    if (L->rt_interpreters_main >= 0)
        return remote_u64(&rt->mem, rt->runtime + (uint64_t)L->rt_interpreters_main, &interp)
                   ? interp
                   : 0;
    /* Read through _Py_DebugOffsets, which does not publish
     * interpreters.main: the main interpreter is the one created first,
     * the tail of the list new ones are pushed onto. */
    uint64_t next = 0;
    if (!remote_u64(&rt->mem, rt->runtime + (uint64_t)L->rt_interpreters_head, &next))
        return 0;
    for (int hops = 0; next && hops < 256; hops++) {
        interp = next;
        if (!remote_u64(&rt->mem, interp + (uint64_t)L->interp_next, &next))
            return 0;
    }
    return next ? 0 : interp; /* not ended: a cycle or a list too long to be real */
}

/* The test switch that withholds generated tables ("3.15", "3.15,3.14t"),
 * so that a version gilprobe knows is read as one it has never seen. */
static bool layout_withheld(const char *version_minor)
{
    const char *list = getenv("GILPROBE_TEST_WITHHOLD_LAYOUT");
    if (!list || !*list)
        return false;
    size_t n = strlen(version_minor);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, version_minor, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

/* A layout read from a block must also make sense of the process: the
 * bounds alone would accept a block whose fields moved inside a section
 * (3.15 added three thread_state fields in the middle of 3.14's). Every
 * thread state of the newest interpreter must point back to it, with a
 * pthread_t that looks like an address and a TID inside pid_max (both 0
 * in a thread state whose thread has not started yet). */
#define PID_MAX_LIMIT (1 << 22)

static bool threads_make_sense(struct pyrt *rt, char *why, size_t whysz)
{
    const struct py_layout *L = &rt->layout;
    uint64_t interp = 0, ts = 0;
    if (!remote_u64(&rt->mem, rt->runtime + (uint64_t)L->rt_interpreters_head, &interp) ||
        !interp || !remote_u64(&rt->mem, interp + (uint64_t)L->interp_threads_head, &ts)) {
        snprintf(why, whysz, "its interpreter list cannot be read through it");
        return false;
    }
    for (int seen = 0; ts && seen < 4096; seen++) {
        uint64_t back = 0, pthread = 0, next = 0;
        int32_t tid = 0;
        if (!remote_u64(&rt->mem, ts + (uint64_t)L->ts_interp, &back) ||
            !remote_u64(&rt->mem, ts + (uint64_t)L->ts_thread_id, &pthread) ||
            !remote_i32(&rt->mem, ts + (uint64_t)L->ts_native_thread_id, &tid) ||
            !remote_u64(&rt->mem, ts + (uint64_t)L->ts_next, &next) || back != interp ||
            (pthread && (pthread < 4096 || (pthread & 7))) || tid < 0 || tid >= PID_MAX_LIMIT) {
            snprintf(why, whysz,
                     "the thread states it describes do not hold together (interp 0x%llx, "
                     "thread id 0x%llx, native id %d)",
                     (unsigned long long)back, (unsigned long long)pthread, (int)tid);
            return false;
        }
        ts = next;
    }
    return true;
}

/* A 3.13+ version without a generated table: its own block, validated. */
static int layout_from_debug_offsets(struct pyrt *rt, struct gp_error *err)
{
    size_t want = debug_offsets_read_size(rt->free_threaded);
    uint8_t table[4096];
    char why[200] = "";
    if (want == 0 || want > sizeof table ||
        remote_read(&rt->mem, rt->runtime, table, want) != 0 ||
        debug_offsets_layout(table, want, rt->version_hex, rt->free_threaded, &rt->layout, why,
                             sizeof why) != 0 ||
        !threads_make_sense(rt, why, sizeof why)) {
        gp_error_set(err, GP_ERR_UNSUPPORTED,
                     "process %d runs Python %s, which has no layout table in this gilprobe, and "
                     "its _Py_DebugOffsets cannot be used: %s; use a supported interpreter "
                     "(%s) or a newer gilprobe",
                     rt->pid, rt->version, why[0] ? why : "it could not be read",
                     py_layout_supported_list());
        return err->code;
    }
    rt->debug_offsets = true;
    rt->unknown_version = true;
    return GP_OK;
}

int pyrt_choose_layout(struct pyrt *rt, uint64_t runtime_size, struct gp_error *err)
{
    int major = (int)(rt->version_hex >> 24), minor = (int)((rt->version_hex >> 16) & 0xff);
    pyrt_format_version(rt->version_hex, rt->version, sizeof rt->version - 1);
    if (rt->free_threaded)
        strcat(rt->version, "t");
    char minor_name[16];
    snprintf(minor_name, sizeof minor_name, "%d.%d%s", major, minor, rt->free_threaded ? "t" : "");
    const struct py_layout *L =
        layout_withheld(minor_name) ? NULL : py_layout_for(major, minor, rt->free_threaded);
    if (!L) {
        if (rt->version_hex < DEBUG_OFFSETS_MIN_VERSION ||
            strcmp(rt->version_source, "_Py_DebugOffsets") != 0)
            return unsupported(err, rt->pid, rt->version);
        if (layout_from_debug_offsets(rt, err) != GP_OK)
            return err->code;
        L = &rt->layout;
    }
    /* The symbol's size is sizeof(_PyRuntimeState): a free cross-check
     * that the version (or block) we read matches the runtime we found. */
    if (runtime_size && (int64_t)runtime_size != L->runtime_size) {
        gp_error_set(err, GP_ERR_UNSUPPORTED,
                     "process %d: _PyRuntime in %s is %lu bytes, but CPython %s's is %d%s; "
                     "this build's layout differs from the one gilprobe knows",
                     rt->pid, rt->binary, (unsigned long)runtime_size, rt->version,
                     L->runtime_size, rt->unknown_version ? " by its _Py_DebugOffsets" : "");
        return err->code;
    }
    if (!rt->unknown_version) {
        rt->layout = *L;
        pyrt_overlay_debug_offsets(rt);
    }
    if (rt->layout.ts_native_thread_id < 0)
        find_pthread_tid_candidates(rt);
    return GP_OK;
}

static int find_runtime(struct pyrt *rt, const struct proc_maps *maps, struct gp_error *err)
{
    struct candidate cands[64];
    size_t nc = 0;
    char exe[PATH_MAX];
    proc_exe_path(rt->pid, exe, sizeof exe);
    /* libpython first (the shared build), then the executable (static). */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < maps->n && nc < 64; i++) {
            const struct proc_map *m = &maps->v[i];
            if (m->offset != 0 || m->path[0] != '/')
                continue;
            bool is_lib;
            int minor = minor_from_name(m->path, &is_lib);
            bool want = pass == 0 ? (is_lib && minor >= 0) : strcmp(m->path, exe) == 0;
            if (!want)
                continue;
            bool dup = false;
            for (size_t k = 0; k < nc; k++)
                dup |= strcmp(cands[k].map->path, m->path) == 0;
            if (!dup)
                cands[nc++] = (struct candidate){m, is_lib, minor};
        }
    }
    for (size_t i = 0; i < nc; i++) {
        if (cands[i].minor_hint >= 200) {
            char v[16];
            snprintf(v, sizeof v, "2.%d", cands[i].minor_hint - 200);
            return unsupported(err, rt->pid, v);
        }
        struct elf_file ef;
        if (elf_file_open_mapped(rt->pid, cands[i].map, &ef, rt->binary_open, sizeof rt->binary_open) != 0)
            continue;
        uint64_t value = 0, size = 0;
        bool by_symbol = elf_file_symbol(&ef, "_PyRuntime", &value, &size);
        bool by_section = !by_symbol && elf_file_section(&ef, ".PyRuntime", &value, &size);
        if (!by_symbol && !by_section) {
            elf_file_close(&ef);
            continue;
        }
        uint64_t bias = cands[i].map->start - ef.min_vaddr;
        rt->runtime = bias + value;
        rt->shared = cands[i].is_lib;
        rt->stripped = !ef.has_symtab;
        rt->found_by_section = by_section;
        snprintf(rt->binary, sizeof rt->binary, "%s", cands[i].map->path);

        /* Version: the debug table (3.13+), Py_Version (3.11+), the text. */
        char cookie[24];
        uint64_t pv;
        if (remote_read(&rt->mem, rt->runtime, cookie, sizeof cookie) == 0 &&
            memcmp(cookie, DEBUG_OFFSETS_COOKIE, 8) == 0) {
            uint64_t hex;
            memcpy(&hex, cookie + 8, 8);
            rt->version_hex = (unsigned)hex;
            rt->version_source = "_Py_DebugOffsets";
            uint64_t ft;
            memcpy(&ft, cookie + 16, 8);
            rt->free_threaded = ft != 0;
        } else if (elf_file_symbol(&ef, "Py_Version", &pv, NULL) &&
                   remote_i32(&rt->mem, bias + pv, (int32_t *)&rt->version_hex)) {
            rt->version_source = "Py_Version";
        } else {
            rt->version_hex = version_from_text(rt, &ef, bias, maps, cands[i].map);
            rt->version_source = "version string";
        }
        uint64_t t;
        if (elf_file_symbol(&ef, "PyCode_Type", &t, NULL))
            rt->code_type = bias + t;
        if (elf_file_symbol(&ef, "PyUnicode_Type", &t, NULL))
            rt->unicode_type = bias + t;
        if (elf_file_symbol(&ef, "PyBytes_Type", &t, NULL))
            rt->bytes_type = bias + t;
        elf_file_close(&ef);

        if (!rt->version_hex) {
            if (cands[i].minor_hint >= 0 && !py_layout_for(3, cands[i].minor_hint, false)) {
                char v[16];
                snprintf(v, sizeof v, "3.%d", cands[i].minor_hint);
                return unsupported(err, rt->pid, v);
            }
            gp_error_set(err, GP_ERR_UNSUPPORTED,
                         "cannot tell which Python version process %d runs (%s has _PyRuntime "
                         "but no version information gilprobe can read); please report it",
                         rt->pid, rt->binary);
            return err->code;
        }
        return pyrt_choose_layout(rt, by_section ? 0 : size, err);
    }
    gp_error_set(err, GP_ERR_NOT_PYTHON,
                 "process %d (%s) is not a CPython process: no _PyRuntime in its executable "
                 "or a libpython it maps; point gilprobe at the python process itself",
                 rt->pid, exe[0] ? exe : "unknown executable");
    return err->code;
}

int pyrt_attach(pid_t pid, struct pyrt *rt, struct gp_error *err)
{
    memset(rt, 0, sizeof *rt);
    rt->pid = pid;
    rt->pthread_tid_off = -1;
    remote_init(&rt->mem, pid);
    int r = proc_exists(pid);
    if (r == -ENOENT || r == -ESRCH) {
        gp_error_set(err, GP_ERR_NO_PROCESS,
                     "no process with PID %d; check the PID (ps, pgrep) and that it is "
                     "visible from this PID namespace",
                     pid);
        return err->code;
    }
    if (r < 0)
        return gp_error_from_errno(err, -r, pid, "/proc status");
    rt->start_time = proc_start_time(pid);
    rt->image_id = proc_image_id(pid);
    rt->ns_pid = proc_ns_tid(pid, pid);
    if (rt->ns_pid == 0)
        rt->ns_pid = pid;
    struct proc_maps maps;
    r = proc_read_maps(pid, &maps);
    if (r < 0)
        return gp_error_from_errno(err, -r, pid, "the memory map");
    /* Probe one read now, so that a permission problem is named as such
     * instead of looking like "not Python". */
    uint8_t probe;
    if (remote_read(&rt->mem, maps.v[0].start, &probe, 1) != 0 &&
        (rt->mem.last_errno == EPERM || rt->mem.last_errno == ESRCH)) {
        proc_maps_free(&maps);
        return gp_error_from_errno(err, rt->mem.last_errno, pid, "memory");
    }
    r = find_runtime(rt, &maps, err);
    proc_maps_free(&maps);
    return r;
}
