#include "target/elfsym.h"
#include "target/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int elf_file_open(const char *path, struct elf_file *ef)
{
    memset(ef, 0, sizeof *ef);
    ef->fd = -1;
    if (elf_version(EV_CURRENT) == EV_NONE)
        return -ENOSYS;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    GElf_Ehdr eh;
    if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
        if (elf)
            elf_end(elf);
        close(fd);
        return -ENOEXEC;
    }
    ef->fd = fd;
    ef->elf = elf;
    ef->is_exec = eh.e_type == ET_EXEC;
    size_t nph = 0;
    elf_getphdrnum(elf, &nph);
    ef->min_vaddr = UINT64_MAX;
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_vaddr < ef->min_vaddr)
            ef->min_vaddr = ph.p_vaddr;
    }
    if (ef->min_vaddr == UINT64_MAX)
        ef->min_vaddr = 0;
    ef->min_vaddr &= ~(uint64_t)0xfff;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB)
            ef->has_symtab = true;
    }
    return 0;
}

void elf_file_close(struct elf_file *ef)
{
    if (ef->elf)
        elf_end(ef->elf);
    if (ef->fd >= 0)
        close(ef->fd);
    ef->elf = NULL;
    ef->fd = -1;
}

static bool search_table(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, const char *name,
                         uint64_t *value, uint64_t *size)
{
    Elf_Data *data = elf_getdata(scn, NULL);
    if (!data || sh->sh_entsize == 0)
        return false;
    size_t count = sh->sh_size / sh->sh_entsize;
    for (size_t i = 0; i < count; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
            continue;
        const char *n = elf_strptr(elf, sh->sh_link, sym.st_name);
        if (n && strcmp(n, name) == 0) {
            *value = sym.st_value;
            if (size)
                *size = sym.st_size;
            return true;
        }
    }
    return false;
}

/* Test-only: a comma-separated list of symbol names to pretend are absent,
 * so the tests can prove the fallbacks used for stripped binaries. */
#define HIDE_SYMBOLS_ENV "GILPROBE_TEST_HIDE_SYMBOLS"

static bool hidden_by_test(const char *name)
{
    const char *list = getenv(HIDE_SYMBOLS_ENV);
    size_t n = strlen(name);
    while (list && *list) {
        const char *end = strchrnul(list, ',');
        if ((size_t)(end - list) == n && strncmp(list, name, n) == 0)
            return true;
        list = *end ? end + 1 : end;
    }
    return false;
}

bool elf_file_symbol(struct elf_file *ef, const char *name, uint64_t *value, uint64_t *size)
{
    static const Elf64_Word order[] = {SHT_DYNSYM, SHT_SYMTAB};
    if (hidden_by_test(name))
        return false;
    for (size_t k = 0; k < 2; k++) {
        Elf_Scn *scn = NULL;
        while ((scn = elf_nextscn(ef->elf, scn))) {
            GElf_Shdr sh;
            if (gelf_getshdr(scn, &sh) && sh.sh_type == order[k] &&
                search_table(ef->elf, scn, &sh, name, value, size))
                return true;
        }
    }
    return false;
}

static bool is_clone_of(const char *name, const char *base)
{
    size_t n = strlen(base);
    return strncmp(name, base, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

size_t elf_file_functions(struct elf_file *ef, const char *base, uint64_t *vals, size_t max)
{
    size_t count = 0;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(ef->elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
            sh.sh_entsize == 0)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        size_t nsyms = data ? sh.sh_size / sh.sh_entsize : 0;
        for (size_t i = 0; i < nsyms; i++) {
            GElf_Sym sym;
            if (!gelf_getsym(data, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
                sym.st_shndx == SHN_UNDEF || sym.st_size == 0)
                continue;
            const char *n = elf_strptr(ef->elf, sh.sh_link, sym.st_name);
            if (!n || !is_clone_of(n, base) || hidden_by_test(n))
                continue;
            bool dup = false;
            for (size_t k = 0; k < count; k++)
                dup |= vals[k] == sym.st_value;
            if (!dup && count < max)
                vals[count++] = sym.st_value;
        }
    }
    return count;
}

bool elf_file_offset_of(struct elf_file *ef, uint64_t vaddr, uint64_t *off)
{
    size_t nph = 0;
    elf_getphdrnum(ef->elf, &nph);
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(ef->elf, (int)i, &ph) && ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr &&
            vaddr < ph.p_vaddr + ph.p_filesz) {
            *off = vaddr - ph.p_vaddr + ph.p_offset;
            return true;
        }
    }
    return false;
}

bool elf_file_section(struct elf_file *ef, const char *name, uint64_t *addr, uint64_t *size)
{
    size_t shstrndx;
    if (elf_getshdrstrndx(ef->elf, &shstrndx) != 0)
        return false;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(ef->elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            continue;
        const char *n = elf_strptr(ef->elf, shstrndx, sh.sh_name);
        if (n && strcmp(n, name) == 0) {
            *addr = sh.sh_addr;
            *size = sh.sh_size;
            return true;
        }
    }
    return false;
}

int elf_file_open_mapped(pid_t pid, const struct proc_map *m, struct elf_file *ef, char *used,
                         size_t usedsz)
{
    proc_map_file_path(pid, m, used, usedsz);
    if (elf_file_open(used, ef) == 0)
        return 0;
    proc_root_path(pid, m->path, used, usedsz);
    if (elf_file_open(used, ef) == 0)
        return 0;
    snprintf(used, usedsz, "%s", m->path);
    return elf_file_open(m->path, ef);
}
