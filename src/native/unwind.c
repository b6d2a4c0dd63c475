#include "native/unwind.h"

#include <elfutils/libdwfl.h>
#include <libunwind-ptrace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <time.h>

#include "target/stopper.h"
#include "util/addrmap.h"
#include "util/grow.h"
#include "util/clock.h"

/* Stack words are read in blocks: one process_vm_readv serves the dozens
 * of word reads a walk makes in the same few hundred bytes. */
#define MEM_BLOCK 1024
#define MEM_BLOCKS 8
/* x86-64 user addresses are below 2^47. */
#define USER_SPACE_END 0x0000800000000000ULL
/* libunwind's cache of register-state recipes, by instruction address. */
#define RS_CACHE_SIZE 4096
/* Dwfl's module list is taken again (new libraries) at most this often. */
#define REPORT_MIN_NS 200000000ull

struct mem_block {
    uint64_t base;
    bool valid;
    uint8_t data[MEM_BLOCK];
};

/* What libunwind's callbacks see as their argument during one unwind. */
struct unwind_ctx {
    void *upt;
    pid_t tid;
    struct user_regs_struct regs;
    bool regs_ok;
    struct mem_block blocks[MEM_BLOCKS];
    unsigned next_block;
};

struct upt_entry {
    pid_t tid;
    void *upt;
};

struct native_session {
    pid_t pid;
    bool want_lines;
    unw_addr_space_t as;
    Dwfl *dwfl;
    uint64_t last_report_ns;
    struct upt_entry *upts; /* per thread: _UPT keeps its last ELF image mapped */
    size_t nupts, capupts;
    struct addrmap syms;    /* address -> struct native_sym* */
    struct addrmap codes;   /* function (or address) -> struct code_info* */
    struct native_sym unknown;
    struct unwind_ctx ctx;
};

/* ---- libunwind accessors: _UPT's, with memory and registers batched ---- */

/* The unwind in progress. libunwind hands the callbacks either the
 * argument given to unw_init_remote or, from inside _UPT_find_proc_info,
 * _UPT's own: both mean this thread, so the callbacks go by this. */
static struct unwind_ctx *g_ctx;

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
                              int need_unwind_info, void *arg)
{
    (void)arg;
    return _UPT_find_proc_info(as, ip, pi, need_unwind_info, g_ctx->upt);
}

static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
    (void)arg;
    _UPT_put_unwind_info(as, pi, g_ctx->upt);
}

static int acc_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *dil, void *arg)
{
    (void)arg;
    return _UPT_get_dyn_info_list_addr(as, dil, g_ctx->upt);
}

static int acc_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write,
                          void *arg)
{
    struct unwind_ctx *c = g_ctx;
    (void)as;
    (void)arg;
    if (write)
        return -UNW_EINVAL; /* gilprobe never writes to the target */
    /* A garbage unwind step asks for any address: past user space, the
     * block arithmetic below would wrap. */
    if (addr >= USER_SPACE_END - sizeof *val)
        return -UNW_EINVAL;
    uint64_t base = addr & ~(uint64_t)(MEM_BLOCK - 1);
    if (addr + sizeof *val > base + MEM_BLOCK)
        base = addr; /* straddles: a block of its own */
    for (unsigned i = 0; i < MEM_BLOCKS; i++) {
        struct mem_block *b = &c->blocks[i];
        if (b->valid && addr >= b->base && addr - b->base <= MEM_BLOCK - sizeof *val) {
            memcpy(val, b->data + (addr - b->base), sizeof *val);
            return 0;
        }
    }
    struct mem_block *b = &c->blocks[c->next_block++ % MEM_BLOCKS];
    struct iovec local = {b->data, MEM_BLOCK}, remote = {(void *)(uintptr_t)base, MEM_BLOCK};
    b->valid = process_vm_readv(c->tid, &local, 1, &remote, 1, 0) == MEM_BLOCK;
    b->base = base;
    if (b->valid) {
        memcpy(val, b->data + (addr - base), sizeof *val);
        return 0;
    }
    /* The block crosses into unmapped memory: just the word. */
    local = (struct iovec){val, sizeof *val};
    remote = (struct iovec){(void *)(uintptr_t)addr, sizeof *val};
    return process_vm_readv(c->tid, &local, 1, &remote, 1, 0) == (ssize_t)sizeof *val
               ? 0
               : -UNW_EINVAL;
}

static unsigned long long *reg_slot(struct user_regs_struct *r, unw_regnum_t reg)
{
    switch (reg) {
    case UNW_X86_64_RAX: return &r->rax;
    case UNW_X86_64_RDX: return &r->rdx;
    case UNW_X86_64_RCX: return &r->rcx;
    case UNW_X86_64_RBX: return &r->rbx;
    case UNW_X86_64_RSI: return &r->rsi;
    case UNW_X86_64_RDI: return &r->rdi;
    case UNW_X86_64_RBP: return &r->rbp;
    case UNW_X86_64_RSP: return &r->rsp;
    case UNW_X86_64_R8: return &r->r8;
    case UNW_X86_64_R9: return &r->r9;
    case UNW_X86_64_R10: return &r->r10;
    case UNW_X86_64_R11: return &r->r11;
    case UNW_X86_64_R12: return &r->r12;
    case UNW_X86_64_R13: return &r->r13;
    case UNW_X86_64_R14: return &r->r14;
    case UNW_X86_64_R15: return &r->r15;
    case UNW_X86_64_RIP: return &r->rip;
    default: return NULL;
    }
}

/* One PTRACE_GETREGS instead of a PTRACE_PEEKUSER per register. */
static int acc_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write,
                          void *arg)
{
    struct unwind_ctx *c = g_ctx;
    (void)arg;
    if (write)
        return -UNW_EREADONLYREG;
    if (!c->regs_ok && ptrace(PTRACE_GETREGS, c->tid, NULL, &c->regs) == 0)
        c->regs_ok = true;
    unsigned long long *slot = c->regs_ok ? reg_slot(&c->regs, reg) : NULL;
    if (!slot)
        return _UPT_access_reg(as, reg, val, write, c->upt);
    *val = (unw_word_t)*slot;
    return 0;
}

static int acc_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write,
                            void *arg)
{
    (void)arg;
    return _UPT_access_fpreg(as, reg, val, write, g_ctx->upt);
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
    (void)as;
    (void)c;
    (void)arg;
    return -UNW_EINVAL; /* never resumes the target into another frame */
}

static int acc_get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
                             unw_word_t *off, void *arg)
{
    (void)arg;
    return _UPT_get_proc_name(as, addr, buf, len, off, g_ctx->upt);
}

static unw_accessors_t ACCESSORS = {
    .find_proc_info = acc_find_proc_info,
    .put_unwind_info = acc_put_unwind_info,
    .get_dyn_info_list_addr = acc_get_dyn_info_list_addr,
    .access_mem = acc_access_mem,
    .access_reg = acc_access_reg,
    .access_fpreg = acc_access_fpreg,
    .resume = acc_resume,
    .get_proc_name = acc_get_proc_name,
};

/* ---- session ---- */

static bool report_modules(struct native_session *s)
{
    s->last_report_ns = clock_mono_ns();
    dwfl_report_begin(s->dwfl);
    int r = dwfl_linux_proc_report(s->dwfl, s->pid);
    dwfl_report_end(s->dwfl, NULL, NULL);
    return r == 0;
}

int native_open(pid_t pid, bool want_lines, struct native_session **out, struct gp_error *err)
{
    /* libunwind-ptrace opens each library's unwind tables by the path the
     * target's maps give, on this machine: in a container or chroot those
     * are other files (or none), and the unwind would be garbage. */
    if (!proc_same_root(pid)) {
        gp_error_set(err, GP_ERR_UNSUPPORTED,
                     "--native cannot unwind process %d: it runs under another root directory "
                     "(a container or chroot) whose libraries this machine's unwinder cannot "
                     "open; run gilprobe inside it, or drop --native",
                     pid);
        return err->code;
    }
    static char *debuginfo_path = NULL;
    static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .debuginfo_path = &debuginfo_path,
    };
    /* Symbols come from what is on this machine: never a network fetch
     * (debuginfod) in the middle of a dump. */
    unsetenv("DEBUGINFOD_URLS");
    struct native_session *s = calloc(1, sizeof *s);
    if (!s) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory starting --native");
        return err->code;
    }
    s->pid = pid;
    s->want_lines = want_lines;
    addrmap_init(&s->syms);
    addrmap_init(&s->codes);
    s->unknown = (struct native_sym){NULL, "?", 0, NULL, -1, NROLE_NONE, NULL};
    s->as = unw_create_addr_space(&ACCESSORS, 0);
    s->dwfl = dwfl_begin(&callbacks);
    if (!s->as || !s->dwfl) {
        native_close(s);
        gp_error_set(err, GP_ERR_INTERNAL, "cannot set up libunwind/elfutils for --native");
        return err->code;
    }
    unw_set_caching_policy(s->as, UNW_CACHE_GLOBAL);
    unw_set_cache_size(s->as, RS_CACHE_SIZE, 0);
    if (!report_modules(s)) {
        native_close(s);
        gp_error_set(err, GP_ERR_PERMISSION,
                     "cannot read the mapped objects of process %d for --native (/proc/%d/maps)",
                     pid, pid);
        return err->code;
    }
    *out = s;
    return GP_OK;
}

static void free_sym(struct native_sym *sym)
{
    free((char *)sym->func);
    free((char *)sym->lib);
    free((char *)sym->file);
    free(sym);
}

static void free_code(struct code_info *ci)
{
    free((char *)ci->name);
    free((char *)ci->filename);
    free(ci);
}

void native_close(struct native_session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nupts; i++)
        _UPT_destroy(s->upts[i].upt);
    free(s->upts);
    for (size_t i = 0; i < s->syms.cap; i++)
        if (s->syms.keys[i])
            free_sym(s->syms.vals[i]);
    for (size_t i = 0; i < s->codes.cap; i++)
        if (s->codes.keys[i])
            free_code(s->codes.vals[i]);
    addrmap_free(&s->syms);
    addrmap_free(&s->codes);
    if (s->as)
        unw_destroy_addr_space(s->as);
    if (s->dwfl)
        dwfl_end(s->dwfl);
    free(s);
}

static void *upt_for(struct native_session *s, pid_t tid)
{
    for (size_t i = 0; i < s->nupts; i++)
        if (s->upts[i].tid == tid)
            return s->upts[i].upt;
    size_t cap = grow_for(&s->upts, sizeof *s->upts, s->nupts, s->capupts, 16);
    if (!cap)
        return NULL;
    s->capupts = cap;
    void *upt = _UPT_create(tid);
    if (upt)
        s->upts[s->nupts++] = (struct upt_entry){tid, upt};
    return upt;
}

/* The walk itself, on a stopped thread. */
static void walk(struct native_session *s, pid_t tid, void *upt, struct native_stack *out)
{
    struct unwind_ctx *c = &s->ctx;
    memset(c, 0, sizeof *c);
    c->upt = upt;
    c->tid = tid;
    g_ctx = c;
    unw_cursor_t cur;
    if (unw_init_remote(&cur, s->as, c) < 0) {
        out->truncated = true;
        return;
    }
    uint64_t deadline = clock_mono_ns() + (uint64_t)NATIVE_UNWIND_BUDGET_US * 1000u;
    for (;;) {
        unw_word_t ip = 0;
        if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        out->ip[out->n++] = ip;
        if (out->n == NATIVE_MAX_FRAMES || clock_mono_ns() > deadline) {
            out->truncated = true;
            break;
        }
        int r = unw_step(&cur);
        if (r < 0)
            out->truncated = true;
        if (r <= 0)
            break;
    }
}

int native_unwind(struct native_session *s, pid_t tid, bool already_stopped,
                  void (*while_stopped)(void *arg), void *arg, struct native_stack *out,
                  struct gp_error *err)
{
    out->n = 0;
    out->truncated = false;
    out->pause_ns = out->stopped_ns = 0;
    void *upt = upt_for(s, tid);
    if (!upt) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory unwinding thread %d", tid);
        return err->code;
    }
    if (!already_stopped) {
        bool gone;
        int r = stopper_stop_thread(tid, NATIVE_STOP_TIMEOUT_MS, &gone, err);
        if (r != GP_OK)
            return r;
    }
    walk(s, tid, upt, out);
    if (while_stopped)
        while_stopped(arg);
    if (!already_stopped) {
        out->pause_ns = stopper_resume_thread(tid);
        out->stopped_ns = stopper_thread_stopped_ns();
    }
    return GP_OK;
}

/* ---- symbols ---- */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

struct role_name {
    const char *name;
    enum native_role role;
};

/* Names as glibc 2.36 and CPython 3.8-3.13 spell them (static functions
 * too: they are in the symbol tables of unstripped builds). */
static const struct role_name ROLES[] = {
    {"_PyEval_EvalFrameDefault", NROLE_EVAL},
    {"take_gil", NROLE_TAKE_GIL},
    {"drop_gil", NROLE_DROP_GIL},
    {"PyThread_acquire_lock_timed", NROLE_LOCK},
    {"PyThread_acquire_lock", NROLE_LOCK},
    {"sem_clockwait", NROLE_LOCK},
    {"sem_timedwait", NROLE_LOCK},
    {"sem_wait", NROLE_LOCK},
    {"__new_sem_wait_slow64", NROLE_LOCK},
    {"__new_sem_wait_slow", NROLE_LOCK},
    {"do_futex_wait", NROLE_LOCK},
    {"__lll_lock_wait", NROLE_LOCK},
    {"___pthread_mutex_lock", NROLE_LOCK},
    {"__pthread_mutex_lock", NROLE_LOCK},
    {"pthread_mutex_lock", NROLE_LOCK},
    {"_PyMutex_LockTimed", NROLE_LOCK},
    {"_PySemaphore_Wait", NROLE_LOCK},
    {"gc_collect_main", NROLE_GC},
    {"gc_collect_with_callback", NROLE_GC},
    {"gc_collect_impl", NROLE_GC},
    {"gc_collect_region", NROLE_GC},
    {"collect", NROLE_GC},
    {"collect_with_callback", NROLE_GC},
};

/* gcc's clones keep the name before the dot: __new_sem_wait_slow64.constprop.0 */
static enum native_role role_of(const char *func)
{
    if (!func)
        return NROLE_NONE;
    size_t len = strcspn(func, ".");
    for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++)
        if (strlen(ROLES[i].name) == len && strncmp(func, ROLES[i].name, len) == 0)
            return ROLES[i].role;
    return NROLE_NONE;
}

static struct code_info *code_for(struct native_session *s, uint64_t key,
                                  const struct native_sym *sym)
{
    struct code_info *ci = addrmap_get(&s->codes, key);
    if (ci)
        return ci;
    ci = calloc(1, sizeof *ci);
    char name[512], file[300];
    if (sym->func)
        snprintf(name, sizeof name, "%s", sym->func);
    else
        snprintf(name, sizeof name, "%s+0x%llx", sym->lib, (unsigned long long)sym->offset);
    snprintf(file, sizeof file, "[%s]", sym->lib);
    if (ci) {
        ci->addr = key;
        ci->name = strdup(name);
        ci->filename = strdup(file);
        ci->firstlineno = -1;
        ci->native = true;
    }
    if (!ci || !ci->name || !ci->filename || !addrmap_put(&s->codes, key, ci)) {
        if (ci)
            free_code(ci);
        return NULL;
    }
    return ci;
}

static struct native_sym *lookup(struct native_session *s, uint64_t pc)
{
    Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, pc);
    if (!mod && clock_mono_ns() - s->last_report_ns > REPORT_MIN_NS && report_modules(s))
        mod = dwfl_addrmodule(s->dwfl, pc); /* a library loaded since */
    struct native_sym *sym = calloc(1, sizeof *sym);
    if (!sym)
        return NULL;
    sym->line = -1;
    uint64_t key = pc;
    if (mod) {
        Dwarf_Addr start = 0, end = 0;
        const char *path = dwfl_module_info(mod, NULL, &start, &end, NULL, NULL, NULL, NULL);
        sym->lib = strdup(path ? base_name(path) : "?");
        Dwarf_Addr bias = 0;
        sym->offset = dwfl_module_getelf(mod, &bias) ? pc - bias : pc;
        /* A module whose bias libdwfl could not work out (seen for ld.so)
         * gives offsets past its own end: its mapping's start is the base. */
        if (sym->offset >= end - start)
            sym->offset = pc - start;
        GElf_Off off = 0;
        GElf_Sym es;
        const char *name = dwfl_module_addrinfo(mod, pc, &off, &es, NULL, NULL, NULL);
        /* A stripped object's nearest exported symbol is not the function
         * the address is in: accept only a symbol that covers it. */
        if (name && ((es.st_size && off < es.st_size) || (!es.st_size && off < 4096))) {
            /* Symbol versions (clock_nanosleep@GLIBC_2.2.5) are noise here. */
            sym->func = strndup(name, strcspn(name, "@"));
            key = pc - off;
        }
        if (s->want_lines) {
            Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
            int lineno = 0;
            const char *src = line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
            if (src && lineno > 0) {
                sym->file = strdup(src);
                sym->line = lineno;
            }
        }
    } else {
        sym->lib = strdup("?");
        sym->offset = pc;
    }
    sym->role = role_of(sym->func);
    sym->code = sym->lib ? code_for(s, key, sym) : NULL;
    return sym;
}

const struct native_sym *native_symbol(struct native_session *s, const struct native_stack *st,
                                       int i)
{
    /* A caller's return address may be the first byte of the next
     * function (noreturn calls): look up the call instruction instead. */
    uint64_t pc = i > 0 ? st->ip[i] - 1 : st->ip[i];
    struct native_sym *sym = addrmap_get(&s->syms, pc);
    if (sym)
        return sym;
    sym = lookup(s, pc);
    if (!sym || !sym->lib || !sym->code || !addrmap_put(&s->syms, pc, sym)) {
        if (sym)
            free_sym(sym);
        return &s->unknown;
    }
    return sym;
}
