/* Symbols and sections of an ELF file (libelf), opened through the
 * target's /proc/PID/root so containers work. */
#ifndef GILPROBE_ELFSYM_H
#define GILPROBE_ELFSYM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct elf_file {
    int fd;
    void *elf;          /* Elf* (kept opaque to spare includers libelf.h) */
    bool has_symtab;    /* .symtab present: not stripped */
    bool is_exec;       /* ET_EXEC: not position independent, bias 0 */
    uint64_t min_vaddr; /* lowest PT_LOAD p_vaddr, page aligned */
};

/* 0 or -errno (-ENOEXEC when not an ELF file). */
int elf_file_open(const char *path, struct elf_file *ef);
void elf_file_close(struct elf_file *ef);

/* Exact name, looked up in .dynsym, then .symtab. */
bool elf_file_symbol(struct elf_file *ef, const char *name, uint64_t *value, uint64_t *size);
bool elf_file_section(struct elf_file *ef, const char *name, uint64_t *addr, uint64_t *size);
/* Functions named `base` or `base.<suffix>` (compiler clones such as
 * take_gil.constprop.0), from .symtab and .dynsym, with a size: their
 * addresses in vals (at most max, without duplicates); returns the count. */
size_t elf_file_functions(struct elf_file *ef, const char *base, uint64_t *vals, size_t max);
/* The file a mapping of process pid maps, opened through its
 * /proc/PID/map_files entry, else through /proc/PID/root (containers),
 * else by its path; `used` gets the path that worked. 0 or -errno. */
struct proc_map;
int elf_file_open_mapped(pid_t pid, const struct proc_map *m, struct elf_file *ef, char *used,
                         size_t usedsz);
/* File offset of a virtual address, through the PT_LOAD segments. */
bool elf_file_offset_of(struct elf_file *ef, uint64_t vaddr, uint64_t *off);

#endif
