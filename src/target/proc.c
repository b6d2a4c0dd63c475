#include "target/proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/grow.h"

#define MAX_MAPS 200000
#define MAX_TASKS 100000

int proc_read_small_file(const char *path, char *buf, size_t sz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sz - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return (int)n;
}

void proc_map_file_path(pid_t pid, const struct proc_map *m, char *out, size_t outsz)
{
    snprintf(out, outsz, "/proc/%d/map_files/%lx-%lx", pid, (unsigned long)m->start,
             (unsigned long)m->end);
}

void proc_exe_path(pid_t pid, char *out, size_t outsz)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/%d/exe", pid);
    ssize_t n = readlink(link, out, outsz - 1);
    out[n > 0 ? n : 0] = '\0';
}

bool proc_same_root(pid_t pid)
{
    char path[64];
    struct stat ours, theirs;
    snprintf(path, sizeof path, "/proc/%d/root", pid);
    return stat("/proc/self/root", &ours) == 0 && stat(path, &theirs) == 0 &&
           ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino;
}

/* /proc/PID/NAME for the process (tid 0), /proc/PID/task/TID/NAME for a thread. */
static void task_file(pid_t pid, pid_t tid, const char *name, char *out, size_t outsz)
{
    if (tid)
        snprintf(out, outsz, "/proc/%d/task/%d/%s", pid, tid, name);
    else
        snprintf(out, outsz, "/proc/%d/%s", pid, name);
}

int proc_task_open(pid_t pid, pid_t tid, const char *name)
{
    char path[96];
    task_file(pid, tid, name, path, sizeof path);
    return open(path, O_RDONLY | O_CLOEXEC);
}

int proc_status_value(pid_t pid, pid_t tid, const char *key, uint64_t *out)
{
    char path[96], buf[8192];
    task_file(pid, tid, "status", path, sizeof path);
    int r = proc_read_small_file(path, buf, sizeof buf);
    if (r < 0)
        return r;
    size_t klen = strlen(key);
    for (const char *p = buf; (p = strstr(p, key)) != NULL; p += klen)
        if ((p == buf || p[-1] == '\n') && p[klen] == ':') {
            *out = strtoull(p + klen + 1, NULL, 10);
            return 0;
        }
    return -EINVAL;
}

int proc_read_maps(pid_t pid, struct proc_maps *maps)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    maps->v = NULL;
    maps->n = 0;
    if (!f)
        return -errno;
    size_t cap = 0;
    char *line = NULL;
    size_t linecap = 0;
    while (getline(&line, &linecap, f) > 0 && maps->n < MAX_MAPS) {
        if (!(cap = grow_for(&maps->v, sizeof *maps->v, maps->n, cap, 256)))
            break;
        struct proc_map *m = &maps->v[maps->n];
        int pathpos = 0;
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %*s %*s %n", &m->start, &m->end,
                   m->perms, &m->offset, &pathpos) < 4)
            continue;
        char *p = line + pathpos;
        p[strcspn(p, "\n")] = '\0';
        snprintf(m->path, sizeof m->path, "%s", p);
        maps->n++;
    }
    free(line);
    int bad = ferror(f) ? -EIO : 0;
    fclose(f);
    if (maps->n == 0 && !bad)
        return -ESRCH; /* a live process always has mappings; a zombie has none */
    return bad;
}

void proc_maps_free(struct proc_maps *maps)
{
    free(maps->v);
    maps->v = NULL;
    maps->n = 0;
}

void proc_root_path(pid_t pid, const char *path, char *out, size_t outsz)
{
    snprintf(out, outsz, "/proc/%d/root%s", pid, path);
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

int proc_list_tasks(pid_t pid, pid_t **tids, size_t *n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    *tids = NULL;
    *n = 0;
    if (!d)
        return -errno;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) && *n < MAX_TASKS) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        if (!(cap = grow_for(tids, sizeof **tids, *n, cap, 64)))
            break;
        (*tids)[(*n)++] = (pid_t)atoi(de->d_name);
    }
    closedir(d);
    if (*n == 0)
        return -ESRCH;
    qsort(*tids, *n, sizeof **tids, cmp_pid);
    return 0;
}

void proc_parse_syscall(const char *text, struct task_info *t)
{
    memset(t->args, 0, sizeof t->args);
    t->sp = t->pc = 0;
    if (strncmp(text, "running", 7) == 0) {
        t->syscall_nr = SYSCALL_NONE;
        return;
    }
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text) {
        t->syscall_nr = SYSCALL_UNKNOWN;
        return;
    }
    t->syscall_nr = v < 0 ? SYSCALL_UNKNOWN : v;
    /* Six arguments when in a syscall; then the stack and program counter. */
    uint64_t vals[8] = {0};
    int want = t->syscall_nr >= 0 ? 8 : 2, got = 0;
    const char *p = end;
    while (got < want) {
        while (*p == ' ')
            p++;
        vals[got] = strtoull(p, &end, 16);
        if (end == p)
            break;
        p = end;
        got++;
    }
    if (t->syscall_nr >= 0) {
        memcpy(t->args, vals, sizeof t->args);
        t->sp = vals[6];
        t->pc = vals[7];
    } else {
        t->sp = vals[0];
        t->pc = vals[1];
    }
}

int proc_stat_parse(const char *buf, struct proc_stat *out)
{
    memset(out, 0, sizeof *out);
    const char *open = strchr(buf, '(');
    const char *close = strrchr(buf, ')'); /* a comm may hold ')' itself */
    if (!open || !close || close < open || close[1] != ' ' || !close[2])
        return -EINVAL;
    size_t len = (size_t)(close - open - 1);
    if (len >= sizeof out->comm)
        len = sizeof out->comm - 1;
    memcpy(out->comm, open + 1, len);
    out->comm[len] = '\0';
    /* The process names its threads: no terminal control sequences. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out->comm[i] < 0x20 || out->comm[i] == 0x7f)
            out->comm[i] = '?';
    const char *p = close + 2;
    out->state = *p;
    /* Fields are numbered from 1 (pid); state is 3. */
    for (int field = 3; *p && field < 28; field++) {
        p = strchr(p, ' ');
        if (!p)
            break;
        p++;
        unsigned long long v = strtoull(p, NULL, 10);
        if (field + 1 == 4)
            out->ppid = (pid_t)v;
        else if (field + 1 == 14)
            out->utime = v;
        else if (field + 1 == 15)
            out->stime = v;
        else if (field + 1 == 22)
            out->starttime = v;
        else if (field + 1 == 26)
            out->startcode = v;
        else if (field + 1 == 28)
            out->startstack = v;
    }
    return 0;
}

int proc_stat_read(pid_t pid, pid_t tid, struct proc_stat *out)
{
    char path[96], buf[1024];
    task_file(pid, tid, "stat", path, sizeof path);
    int r = proc_read_small_file(path, buf, sizeof buf);
    return r < 0 ? r : proc_stat_parse(buf, out);
}

int proc_task_read(pid_t pid, pid_t tid, struct task_info *out)
{
    char path[96], buf[1024];
    memset(out, 0, sizeof *out);
    out->tid = tid;
    struct proc_stat st;
    int r = proc_stat_read(pid, tid, &st);
    if (r < 0)
        return r;
    memcpy(out->comm, st.comm, sizeof out->comm);
    out->state = st.state;
    out->utime = st.utime;
    out->stime = st.stime;
    task_file(pid, tid, "syscall", path, sizeof path);
    r = proc_read_small_file(path, buf, sizeof buf);
    if (r < 0) {
        /* Zombie threads have no syscall file content; keep the stat. */
        out->syscall_nr = SYSCALL_UNKNOWN;
        if (r == -EACCES || r == -EPERM)
            return r;
    } else {
        proc_parse_syscall(buf, out);
    }
    out->valid = true;
    return 0;
}

int proc_cmdline(pid_t pid, char *buf, size_t sz)
{
    char path[64];
    task_file(pid, 0, "cmdline", path, sizeof path);
    int n = proc_read_small_file(path, buf, sz);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
        else if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = '?'; /* no terminal control sequences */
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = '\0';
    return 0;
}

pid_t proc_ns_tid(pid_t pid, pid_t tid)
{
    char path[96], buf[4096];
    task_file(pid, tid, "status", path, sizeof path);
    if (proc_read_small_file(path, buf, sizeof buf) < 0)
        return 0;
    char *p = strstr(buf, "\nNSpid:");
    if (!p)
        return tid; /* kernels before 4.1: no namespaces shown */
    p += 7;
    pid_t last = 0;
    char *end;
    for (;;) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        last = (pid_t)v;
        p = end;
    }
    return last;
}

int proc_exists(pid_t pid)
{
    struct proc_stat st;
    int r = proc_stat_read(pid, 0, &st);
    if (r < 0)
        return r;
    return proc_stat_exited(&st) ? -ESRCH : 0;
}

bool proc_stat_exited(const struct proc_stat *st)
{
    /* A zombie has exited: nothing of it is left to read. */
    return st->state == 'Z' || st->state == 'X';
}

uint64_t proc_start_time(pid_t pid)
{
    struct proc_stat st;
    return proc_stat_read(pid, 0, &st) < 0 ? 0 : st.starttime;
}

bool proc_maps_mention(pid_t pid, const char *needle)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t keep = strlen(needle) - 1, have = 0;
    char buf[65536 + 1];
    bool found = false;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        if (strstr(buf, needle)) {
            found = true;
            break;
        }
        /* a needle cut at the end of this read: its start stays */
        size_t tail = have < keep ? have : keep;
        memmove(buf, buf + have - tail, tail);
        have = tail;
    }
    close(fd);
    return found;
}

uint64_t proc_stat_image_id(const struct proc_stat *st)
{
    return st->startcode ^ (st->startstack << 1);
}

uint64_t proc_image_id(pid_t pid)
{
    struct proc_stat st;
    return proc_stat_read(pid, 0, &st) < 0 ? 0 : proc_stat_image_id(&st);
}

const char *proc_state_name(char state)
{
    switch (state) {
    case 'R': return "running";
    case 'S': return "sleeping";
    case 'D': return "disk";
    case 'T': return "stopped";
    case 't': return "traced";
    case 'Z': return "zombie";
    case 'X': return "dead";
    case 'I': return "idle";
    default: return "unknown";
    }
}
