/* Everything gilprobe learns from /proc/PID: maps, tasks, per-thread kernel
 * state and blocking syscall, command line, PID namespaces. */
#ifndef GILPROBE_PROC_H
#define GILPROBE_PROC_H
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_map {
    uint64_t start, end, offset;
    char perms[5];
    char path[PATH_MAX];
};

struct proc_maps {
    struct proc_map *v;
    size_t n;
};

/* Reads a small file (/proc, /sys) whole into buf, NUL-terminated: the
 * bytes read, or -errno. */
int proc_read_small_file(const char *path, char *buf, size_t sz);

/* What gilprobe uses of a /proc/PID[/task/TID]/stat line: the one parser
 * of it (the comm may contain spaces and parentheses: fields are counted
 * from the last ')'). */
struct proc_stat {
    char comm[32];      /* control characters replaced by '?' */
    char state;         /* R S D T t Z X I ... */
    pid_t ppid;         /* field 4 */
    uint64_t utime, stime; /* clock ticks (fields 14, 15) */
    uint64_t starttime; /* clock ticks since boot (field 22) */
    /* Where its program's code and its stack start (fields 26, 28): new,
     * random places after an exec (0 without the right to read them). */
    uint64_t startcode, startstack;
};

/* 0 or -EINVAL for a line that is not a stat line. */
int proc_stat_parse(const char *buf, struct proc_stat *out);
/* The stat of a process (tid 0) or of one of its threads. 0 or -errno. */
int proc_stat_read(pid_t pid, pid_t tid, struct proc_stat *out);

/* 0 or -errno. */
int proc_read_maps(pid_t pid, struct proc_maps *maps);
void proc_maps_free(struct proc_maps *maps);

/* A file of the target as seen from its own mount namespace. */
void proc_root_path(pid_t pid, const char *path, char *out, size_t outsz);

/* Its map_files entry for a mapping (the mapped file, right even across
 * mount namespaces and chroots). */
void proc_map_file_path(pid_t pid, const struct proc_map *m, char *out, size_t outsz);
/* The path of its executable ("" when unreadable). */
void proc_exe_path(pid_t pid, char *out, size_t outsz);
/* True when it sees the same root directory as gilprobe. */
bool proc_same_root(pid_t pid);

/* A file of one of its threads (/proc/PID/task/TID/name) opened for
 * reading again and again (pread): an fd, or -1. */
int proc_task_open(pid_t pid, pid_t tid, const char *name);
/* The number of a "Key: N" line of /proc/PID/status (tid 0) or of a
 * thread's (VmRSS in KiB, nonvoluntary_ctxt_switches, ...). 0, or -errno
 * (-EINVAL without that line). */
int proc_status_value(pid_t pid, pid_t tid, const char *key, uint64_t *out);

/* Thread ids of the process, ascending. 0 or -errno. */
int proc_list_tasks(pid_t pid, pid_t **tids, size_t *n);

#define SYSCALL_NONE (-2)    /* "running": on a CPU, not in a syscall */
#define SYSCALL_UNKNOWN (-1) /* blocked, but not in a syscall (e.g. a fault) */

struct task_info {
    pid_t tid;
    char comm[32];
    char state;         /* R S D T t Z X I ... from stat */
    long syscall_nr;    /* SYSCALL_NONE, SYSCALL_UNKNOWN or the number */
    /* Runnable but off CPU, woken inside this syscall and not yet back from
     * it (e.g. an event loop whose epoll_wait returned on a busy machine);
     * -1 when not known (on a CPU, or no eBPF reader). */
    long woken_in_syscall;
    uint64_t args[6];
    uint64_t sp, pc;    /* user stack and instruction pointers in the syscall */
    uint64_t utime, stime; /* clock ticks */
    bool valid;
};

/* Reads comm, stat and syscall of one thread. 0 or -errno. */
int proc_task_read(pid_t pid, pid_t tid, struct task_info *out);

/* Parses a /proc/.../syscall line ("running", "-1 sp pc" or "nr a0..a5 sp
 * pc") into t's syscall_nr, args, sp and pc. */
void proc_parse_syscall(const char *text, struct task_info *t);

/* NUL-separated argv joined by spaces. 0 or -errno. */
int proc_cmdline(pid_t pid, char *buf, size_t sz);

/* Innermost-namespace id of a task (NSpid's last field); the id itself when
 * the process shares our PID namespace. 0 when unknown. */
pid_t proc_ns_tid(pid_t pid, pid_t tid);

/* 0 if the process is alive, -ESRCH for a zombie, -errno otherwise. */
int proc_exists(pid_t pid);

/* Start time (clock ticks since boot, stat field 22): tells a reused PID. */
uint64_t proc_start_time(pid_t pid);
/* Which program image the process runs: changes when it execs (0: cannot
 * tell - gone, or not ours to read). */
uint64_t proc_image_id(pid_t pid);
/* Whether its memory map's text holds needle (read as text, not parsed:
 * the map of a Python process is long). */
bool proc_maps_mention(pid_t pid, const char *needle);
/* Exited (a zombie, or dead), from a stat already read. */
bool proc_stat_exited(const struct proc_stat *st);
/* The same from a stat already read. */
uint64_t proc_stat_image_id(const struct proc_stat *st);

const char *proc_state_name(char state);

#endif
