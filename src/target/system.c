#include "target/system.h"

#include <ctype.h>
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "target/proc.h"

#define MAX_TREE 65536
#define CPU_BOUND_SHARE 0.25
#define CPU_BOUND_DEMAND 0.8

static bool read_file(const char *path, char *buf, size_t sz)
{
    return proc_read_small_file(path, buf, sz) >= 0;
}

void system_topology(const char *root, int *logical, int *physical)
{
    *logical = *physical = 0;
    DIR *d = opendir(root);
    if (!d)
        return;
    long keys[4096];
    int nkeys = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "cpu", 3) != 0 || !isdigit((unsigned char)de->d_name[3]))
            continue;
        char path[1024], buf[64];
        snprintf(path, sizeof path, "%s/%s/online", root, de->d_name);
        if (read_file(path, buf, sizeof buf) && buf[0] == '0')
            continue; /* offline (cpu0 has no "online" file: always on) */
        (*logical)++;
        long core = -1, pkg = 0;
        snprintf(path, sizeof path, "%s/%s/topology/core_id", root, de->d_name);
        if (read_file(path, buf, sizeof buf))
            core = atol(buf);
        snprintf(path, sizeof path, "%s/%s/topology/physical_package_id", root, de->d_name);
        if (read_file(path, buf, sizeof buf))
            pkg = atol(buf);
        long key = core < 0 ? -1 - *logical : pkg * 100000 + core;
        bool seen = false;
        for (int i = 0; i < nkeys && !seen; i++)
            seen = keys[i] == key;
        if (!seen && nkeys < 4096)
            keys[nkeys++] = key;
    }
    closedir(d);
    *physical = nkeys;
}

/* cgroup v2 cpu.max of the target's cgroup: "max 100000" or "50000 100000". */
static double cgroup_quota(pid_t pid)
{
    char path[256], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
    if (!read_file(path, buf, sizeof buf))
        return 0;
    char *p = strstr(buf, "0::");
    if (!p)
        return 0;
    p += 3;
    p[strcspn(p, "\n")] = '\0';
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", p);
    char q[64];
    if (!read_file(path, q, sizeof q) || strncmp(q, "max", 3) == 0)
        return 0;
    double quota = 0, period = 0;
    if (sscanf(q, "%lf %lf", &quota, &period) != 2 || period <= 0)
        return 0;
    return quota / period;
}

static bool stat_cpu(uint64_t *total, uint64_t *steal)
{
    char buf[512];
    if (!read_file("/proc/stat", buf, sizeof buf))
        return false;
    unsigned long long v[10] = {0};
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) < 8)
        return false;
    *total = 0;
    for (int i = 0; i < 8; i++)
        *total += v[i];
    *steal = v[7];
    return true;
}

static int running_tasks(void)
{
    char buf[128];
    int running = 0, total = 0;
    if (read_file("/proc/loadavg", buf, sizeof buf))
        sscanf(buf, "%*f %*f %*f %d/%d", &running, &total);
    return running;
}

static char proc_state(pid_t pid)
{
    struct proc_stat st;
    return proc_stat_read(pid, 0, &st) < 0 ? '?' : st.state;
}

static bool is_python(pid_t pid)
{
    char exe[512];
    proc_exe_path(pid, exe, sizeof exe);
    const char *b = strrchr(exe, '/');
    return b && strncmp(b + 1, "python", 6) == 0;
}

/* Children of every thread of pid (/proc/PID/task/TID/children). */
static int children_of(pid_t pid, pid_t *out, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char cpath[320];
        snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", pid, de->d_name);
        FILE *f = fopen(cpath, "re");
        if (!f)
            continue;
        int c;
        while (n < max && fscanf(f, "%d", &c) == 1)
            out[n++] = c;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* utime+stime of a whole process (clock ticks). */
static uint64_t process_ticks(pid_t pid)
{
    struct proc_stat st;
    return proc_stat_read(pid, 0, &st) < 0 ? 0 : st.utime + st.stime;
}

/* CPU wanted by a process's main thread so far, in ns: time on a CPU plus
 * time runnable in a run queue (/proc/PID/schedstat). Unlike CPU time this
 * does not shrink when other load leaves the process less CPU. */
static uint64_t process_demand_ns(pid_t pid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
    unsigned long long on_cpu = 0, waiting = 0;
    if (!read_file(path, buf, sizeof buf) || sscanf(buf, "%llu %llu", &on_cpu, &waiting) != 2)
        return 0;
    return on_cpu + waiting;
}

/* Children's CPU counters kept at the start (at most this many), to tell
 * the CPU-bound ones at the end. */
#define MAX_CHILDREN_START (MAX_TREE / 16)

/* The process tree below pid. At the start (start set), each child's CPU
 * counters go into v's children_start; later, the deltas since then tell
 * which children are CPU-bound. */
static void tree(pid_t pid, struct tree_view *t, struct system_view *v, bool start,
                 double seconds)
{
    memset(t, 0, sizeof *t);
    pid_t *queue = malloc(MAX_TREE * sizeof *queue);
    if (!queue)
        return;
    pid_t *parent = malloc(MAX_TREE * sizeof *parent);
    if (!parent) {
        free(queue);
        return;
    }
    if (start)
        v->nchildren_start = 0;
    int head = 0, tail = children_of(pid, queue, MAX_TREE);
    for (int i = 0; i < tail; i++)
        parent[i] = pid;
    /* Zombies per parent, to name the one that does not reap them. */
    pid_t zparent[64];
    int zcount[64], nz = 0;
    while (head < tail) {
        pid_t c = queue[head];
        pid_t up = parent[head++];
        char st = proc_state(c);
        t->children++;
        t->zombies += st == 'Z';
        if (st == 'Z') {
            int k = 0;
            while (k < nz && zparent[k] != up)
                k++;
            if (k == nz && nz < 64) {
                zparent[nz] = up;
                zcount[nz++] = 0;
            }
            if (k < nz)
                zcount[k]++;
        }
        t->busy_children += st == 'R';
        t->python_children += st != 'Z' && is_python(c);
        uint64_t ticks = st == 'Z' ? 0 : process_ticks(c);
        uint64_t demand = st == 'Z' ? 0 : process_demand_ns(c);
        if (start && v->children_start && v->nchildren_start < MAX_CHILDREN_START) {
            v->children_start[v->nchildren_start++] = (struct child_start){c, ticks, demand};
        } else if (!start && seconds > 0) {
            for (int i = 0; i < v->nchildren_start; i++) {
                const struct child_start *s = &v->children_start[i];
                if (s->pid != c || ticks < s->ticks)
                    continue;
                double share = (double)(ticks - s->ticks) / (double)sysconf(_SC_CLK_TCK) / seconds;
                double wanted = demand > s->demand_ns
                                    ? (double)(demand - s->demand_ns) / 1e9 / seconds
                                    : 0;
                /* Oversubscribed workers cannot each get a whole CPU:
                 * getting a quarter of one, or wanting (running or
                 * runnable) most of the time, makes them CPU-bound. */
                if (share >= CPU_BOUND_SHARE || wanted >= CPU_BOUND_DEMAND) {
                    t->cpu_bound_children++;
                    t->children_cpu_pct += 100.0 * share;
                }
            }
        }
        int added = children_of(c, queue + tail, MAX_TREE - tail);
        for (int i = 0; i < added; i++)
            parent[tail + i] = c;
        tail += added;
    }
    int best = -1;
    for (int k = 0; k < nz; k++)
        if (best < 0 || zcount[k] > zcount[best])
            best = k;
    t->zombie_parent = best >= 0 ? zparent[best] : 0;
    free(parent);
    free(queue);
}

static uint64_t rss_kb(pid_t pid)
{
    uint64_t kb;
    return proc_status_value(pid, 0, "VmRSS", &kb) == 0 ? kb : 0;
}

/* RSS, and the thread stacks: each blocked thread's stack pointer (from its
 * syscall line) and the mappings holding them, with their resident size. */
static void memory(pid_t pid, struct mem_view *m)
{
    memset(m, 0, sizeof *m);
    m->rss_kb = rss_kb(pid);
    char path[64];
    pid_t *tids;
    size_t ntids;
    if (proc_list_tasks(pid, &tids, &ntids) != 0)
        return;
    uint64_t *sps = calloc(ntids ? ntids : 1, sizeof *sps);
    for (size_t i = 0; sps && i < ntids; i++) {
        struct task_info ti;
        if (proc_task_read(pid, tids[i], &ti) == 0 && ti.syscall_nr != SYSCALL_NONE)
            sps[i] = ti.sp;
    }
    free(tids);
    snprintf(path, sizeof path, "/proc/%d/smaps", pid);
    FILE *f = fopen(path, "re");
    if (!f || !sps) {
        if (f)
            fclose(f);
        free(sps);
        return;
    }
    char line[512];
    uint64_t start = 0, end = 0;
    bool stack = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long long s, e;
        if (sscanf(line, "%llx-%llx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            start = s;
            end = e;
            /* Threads, not mappings: glibc 2.42+ on Linux 6.13+ marks stack
             * guards with madvise, not mprotect, so neighbouring thread
             * stacks can share one mapping (seen with Debian's 3.14). */
            uint32_t threads = 0;
            for (size_t i = 0; i < ntids; i++)
                threads += sps[i] >= start && sps[i] < end;
            stack = threads > 0;
            if (stack) {
                m->stacks += threads;
                m->stacks_reserved_kb += (end - start) / 1024;
            }
        } else if (stack && strncmp(line, "Rss:", 4) == 0) {
            m->stacks_resident_kb += strtoull(line + 4, NULL, 10);
        }
    }
    fclose(f);
    free(sps);
}

int system_python_descendants(pid_t pid, pid_t *out, int max)
{
    pid_t *queue = malloc(MAX_TREE * sizeof *queue);
    if (!queue)
        return 0;
    int head = 0, tail = children_of(pid, queue, MAX_TREE), n = 0;
    while (head < tail && n < max) {
        pid_t c = queue[head++];
        if (proc_state(c) != 'Z' && is_python(c))
            out[n++] = c;
        tail += children_of(c, queue + tail, MAX_TREE - tail);
    }
    free(queue);
    return n;
}

void system_begin(pid_t pid, struct system_view *v)
{
    memset(v, 0, sizeof *v);
    system_topology("/sys/devices/system/cpu", &v->cpu.logical, &v->cpu.physical);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(pid, sizeof set, &set) == 0)
        v->cpu.affinity = CPU_COUNT(&set);
    v->cpu.quota_cpus = cgroup_quota(pid);
    v->cpu.running_start = running_tasks();
    stat_cpu(&v->cpu_total_start, &v->cpu_steal_start);
    v->children_start = calloc(MAX_CHILDREN_START, sizeof *v->children_start);
    tree(pid, &v->tree_start, v, true, 0);
    memory(pid, &v->mem_start);
    v->target_ticks_start = process_ticks(pid);
}

void system_observe(pid_t pid, struct system_view *v, double seconds)
{
    char st = proc_state(pid);
    uint64_t rss = rss_kb(pid);
    if (st == 'Z' || st == 'X' || st == '?' || !rss)
        return; /* gone, or going: not a reading of the living process */
    /* The process tree costs a file per thread (each one's children): with
     * hundreds of threads that is milliseconds the sampler's refresh would
     * wait for, so it is read every fifth time only. */
    if (!v->have_last || ++v->observations % 5 == 0)
        tree(pid, &v->tree_last, v, false, seconds);
    v->rss_last_kb = rss;
    v->ticks_last = process_ticks(pid);
    v->last_seconds = seconds;
    v->have_last = true;
}

void system_end(pid_t pid, struct system_view *v, double seconds, bool gone)
{
    uint64_t total, steal;
    if (stat_cpu(&total, &steal) && total > v->cpu_total_start)
        v->cpu.steal_pct = 100.0 * (double)(steal - v->cpu_steal_start) /
                           (double)(total - v->cpu_total_start);
    v->cpu.running_end = running_tasks();
    uint64_t ticks;
    if (gone) {
        /* Thread stacks are not read again: those of the start stand. */
        v->mem_end = v->mem_start;
        v->tree_end = v->have_last ? v->tree_last : v->tree_start;
        if (v->have_last)
            v->mem_end.rss_kb = v->rss_last_kb;
        ticks = v->have_last ? v->ticks_last : v->target_ticks_start;
        seconds = v->have_last ? v->last_seconds : seconds;
    } else {
        tree(pid, &v->tree_end, v, false, seconds);
        memory(pid, &v->mem_end);
        ticks = process_ticks(pid);
    }
    v->seconds = seconds;
    if (seconds > 0 && ticks >= v->target_ticks_start)
        v->target_cpu_pct = 100.0 * (double)(ticks - v->target_ticks_start) /
                            (double)sysconf(_SC_CLK_TCK) / seconds;
    free(v->children_start);
    v->children_start = NULL;
    v->nchildren_start = 0;
    if (seconds > 0) {
        v->children_growth_per_s =
            (double)(v->tree_end.children - v->tree_start.children) / seconds;
        v->rss_growth_kb_per_s =
            ((double)v->mem_end.rss_kb - (double)v->mem_start.rss_kb) / seconds;
    }
}
