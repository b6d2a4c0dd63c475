/* `gilprobe serve`: many targets, one exporter. Each target gets a
 * collector: gilprobe itself, exec'd as `watch --export-fd` (a process of
 * its own: its eBPF maps and probes, its memory, all go with it when the
 * target exits or it is stopped; a target that crashes its reader cannot
 * take the server down). The collectors send a JSON line of figures at each
 * scrape (this loop signals them) and every few seconds when nobody
 * scrapes; this loop adds them up into the fleet that the HTTP side renders. With --all,
 * every few seconds, the host's new processes that `-p` would accept (the
 * same attach check) get a collector. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"
#include "target/proc.h"
#include "util/grow.h"
#include "util/signals.h"
#include "util/clock.h"

/* A collector's line longer than this is dropped (a target with tens of
 * thousands of threads); the collector goes on. */
#define LINE_MAX_BYTES (8u << 20)
/* Collectors get this long to undo their probes after SIGTERM. */
#define COLLECTOR_STOP_S 5.0
/* Scrapes ask the collectors for figures no more often than this. */
#define SERVE_ASK_EVERY_S 0.25

struct collector {
    pid_t target, child;
    int fd;
    char *buf;
    size_t len, cap;
    bool skipping; /* inside an over-long line */
};

/* Processes --all looked at and will not watch (not Python, filtered out,
 * or refused), by PID and start time: a reused PID is looked at again. */
struct seen {
    pid_t pid;
    unsigned long long start;
};

struct server {
    struct serve_state s;
    struct collector *c;
    uint32_t n, cap;
    struct seen *rejected;
    uint32_t nrejected, caprejected;
    regex_t match, exclude;
    bool have_match, have_exclude;
};

/* The collector process for target: gilprobe watch --export-fd. */
static int start_collector(struct server *sv, pid_t target)
{
    const struct serve_options *o = sv->s.opt;
    size_t ncap = grow_for(&sv->c, sizeof *sv->c, sv->n, sv->cap, 8);
    if (!ncap)
        return -1;
    sv->cap = (uint32_t)ncap;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t parent = getpid();
    pid_t c = fork();
    if (c < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (c == 0) {
        /* Dies with the server, whatever kills it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        /* A scrape's SIGUSR2 before the collector's handler is in place
         * would kill it: ignored until then (SIG_IGN survives the exec). */
        signal(SIGUSR2, SIG_IGN);
        if (getppid() != parent)
            _exit(0);
        int fd = dup(p[1]); /* without O_CLOEXEC: it crosses the exec */
        char pid_s[16], fd_s[16], rate_s[32], window_s[32];
        snprintf(pid_s, sizeof pid_s, "%d", (int)target);
        snprintf(fd_s, sizeof fd_s, "%d", fd);
        snprintf(rate_s, sizeof rate_s, "%g", o->rate_hz);
        snprintf(window_s, sizeof window_s, "%g", o->window_s);
        char *argv[] = {"gilprobe", "watch", "-p", pid_s, "-r", rate_s, "--window", window_s,
                        "--export-fd", fd_s, o->no_bpf ? "--no-bpf" : NULL, NULL};
        execv(sv->s.self_exe, argv);
        fprintf(stderr, "gilprobe: serve: could not start a collector for PID %d (%s)\n",
                (int)target, strerror(errno));
        _exit(GP_ERR_INTERNAL);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    sv->c[sv->n++] = (struct collector){.target = target, .child = c, .fd = p[0]};
    pthread_mutex_lock(&sv->s.lock);
    fleet_target(&sv->s.fleet, target);
    pthread_mutex_unlock(&sv->s.lock);
    return 0;
}

static void apply_line(struct server *sv, struct collector *c, const char *line)
{
    pthread_mutex_lock(&sv->s.lock);
    struct fleet_target *t = fleet_target(&sv->s.fleet, c->target);
    if (t) {
        uint64_t records = t->records;
        fleet_apply_line(t, line);
        if (t->records != records) {
            t->record_at = clock_mono_s();
            pthread_cond_broadcast(&sv->s.fresh);
        }
    }
    pthread_mutex_unlock(&sv->s.lock);
}

/* What the collector sent since; false at its end (EOF or error). */
static bool drain(struct server *sv, struct collector *c)
{
    for (;;) {
        if (c->cap - c->len < 65536) {
            size_t ncap = c->cap ? c->cap * 2 : 65536 * 2;
            if (ncap > LINE_MAX_BYTES) {
                /* an over-long line: forget it up to its end */
                c->len = 0;
                c->skipping = true;
                ncap = c->cap;
            }
            if (ncap != c->cap) {
                char *nb = realloc(c->buf, ncap);
                if (!nb)
                    return false;
                c->buf = nb;
                c->cap = ncap;
            }
        }
        ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (r <= 0)
            return false;
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        char *start = c->buf, *nl;
        while ((nl = memchr(start, '\n', c->len - (size_t)(start - c->buf)))) {
            *nl = '\0';
            if (!c->skipping)
                apply_line(sv, c, start);
            c->skipping = false;
            start = nl + 1;
        }
        c->len -= (size_t)(start - c->buf);
        memmove(c->buf, start, c->len);
    }
}

/* The collector ended (its target exited, or it failed): its series go. */
static void retire(struct server *sv, uint32_t i)
{
    struct collector *c = &sv->c[i];
    int status = 0;
    while (waitpid(c->child, &status, 0) < 0 && errno == EINTR)
        ;
    close(c->fd);
    free(c->buf);
    bool exited = kill(c->target, 0) != 0 && errno == ESRCH;
    fprintf(stderr, "gilprobe: serve: PID %d %s; its series go\n", (int)c->target,
            exited ? "exited"
            : WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "is no longer watched"
                                                           : "could not be watched (see above)");
    pthread_mutex_lock(&sv->s.lock);
    fleet_remove(&sv->s.fleet, c->target);
    pthread_mutex_unlock(&sv->s.lock);
    sv->c[i] = sv->c[--sv->n];
}

static bool watched(const struct server *sv, pid_t pid)
{
    for (uint32_t i = 0; i < sv->n; i++)
        if (sv->c[i].target == pid)
            return true;
    return false;
}

static bool rejected(struct server *sv, pid_t pid, unsigned long long start)
{
    for (uint32_t i = 0; i < sv->nrejected; i++)
        if (sv->rejected[i].pid == pid) {
            if (sv->rejected[i].start == start)
                return true;
            sv->rejected[i] = sv->rejected[--sv->nrejected]; /* a reused PID */
            return false;
        }
    return false;
}

static void reject(struct server *sv, pid_t pid, unsigned long long start)
{
    size_t ncap = grow_for(&sv->rejected, sizeof *sv->rejected, sv->nrejected, sv->caprejected, 64);
    if (!ncap)
        return;
    sv->caprejected = (uint32_t)ncap;
    sv->rejected[sv->nrejected++] = (struct seen){pid, start};
}

/* --match/--exclude on the command line (arguments joined by spaces). */
static bool selected(const struct server *sv, pid_t pid)
{
    if (!sv->have_match && !sv->have_exclude)
        return true;
    char cmd[4096];
    proc_cmdline(pid, cmd, sizeof cmd);
    if (sv->have_match && regexec(&sv->match, cmd, 0, NULL, 0) != 0)
        return false;
    return !(sv->have_exclude && regexec(&sv->exclude, cmd, 0, NULL, 0) == 0);
}

/* Forgets rejected processes that are gone (the list stays as long as the
 * host's process list, not as long as the run). */
static void prune_rejected(struct server *sv)
{
    for (uint32_t i = 0; i < sv->nrejected;) {
        if (proc_start_time(sv->rejected[i].pid) != sv->rejected[i].start)
            sv->rejected[i] = sv->rejected[--sv->nrejected];
        else
            i++;
    }
}

/* --all: every process of the host that -p would accept. */
static void discover(struct server *sv)
{
    prune_rejected(sv);
    DIR *d = opendir("/proc");
    if (!d)
        return;
    pid_t self = getpid();
    struct dirent *e;
    while ((e = readdir(d)) && !signals_stop_requested) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end || v <= 0 || (pid_t)v == self || watched(sv, (pid_t)v))
            continue;
        pid_t pid = (pid_t)v;
        struct proc_stat st;
        if (proc_stat_read(pid, 0, &st) != 0 || rejected(sv, pid, st.starttime))
            continue;
        unsigned long long start = st.starttime;
        if (st.ppid == self)
            continue; /* our own collectors and reports */
        struct pyrt rt;
        struct gp_error err = {0};
        if (!selected(sv, pid) || pyrt_attach(pid, &rt, &err) != GP_OK) {
            reject(sv, pid, start);
            continue;
        }
        if (start_collector(sv, pid) == 0)
            fprintf(stderr, "gilprobe: serve: watching PID %d (Python %s)\n", (int)pid, rt.version);
    }
    closedir(d);
}

static void stop_collectors(struct server *sv)
{
    for (uint32_t i = 0; i < sv->n; i++)
        kill(sv->c[i].child, SIGTERM);
    double give_up = clock_mono_s() + COLLECTOR_STOP_S;
    while (sv->n) {
        for (uint32_t i = 0; i < sv->n; i++) {
            int status;
            if (waitpid(sv->c[i].child, &status, WNOHANG) == sv->c[i].child) {
                close(sv->c[i].fd);
                free(sv->c[i].buf);
                sv->c[i--] = sv->c[--sv->n];
            }
        }
        if (clock_mono_s() >= give_up) {
            /* their probes are file descriptors: they go with them */
            for (uint32_t i = 0; i < sv->n; i++)
                kill(sv->c[i].child, SIGKILL);
            give_up = clock_mono_s() + 60;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Every target whose collector is up (it said what the target is) sent
 * figures since `since`. */
static bool all_fresh(const struct fleet *f, double since)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (f->t[i].info_seen && f->t[i].record_at < since)
            return false;
    return true;
}

void serve_fresh_figures(struct serve_state *s)
{
    double asked = clock_mono_s(), since = asked - SERVE_FRESH_S;
    struct timespec deadline = clock_timespec(asked + SERVE_FRESH_WAIT_S);
    pthread_mutex_lock(&s->lock);
    if (!all_fresh(&s->fleet, since)) {
        uint64_t one = 1;
        /* Fails only on a full counter (EAGAIN): a request is pending then. */
        ssize_t asked_now = write(s->scrape_fd, &one, sizeof one);
        (void)asked_now;
        while (!all_fresh(&s->fleet, since))
            if (pthread_cond_timedwait(&s->fresh, &s->lock, &deadline) == ETIMEDOUT)
                break;
    }
    pthread_mutex_unlock(&s->lock);
}

/* A scrape wants fresh figures: every collector sends its figures now.
 * At most every SERVE_ASK_EVERY_S: a flood of requests (each finding the
 * figures stale until the answers come) is one signal per collector, not
 * thousands (a collector whose sleep is cut that often never gets on). */
static void ask_figures(struct server *sv, double *last_ask)
{
    uint64_t n;
    if (read(sv->s.scrape_fd, &n, sizeof n) != sizeof n)
        return;
    double now = clock_mono_s();
    if (now - *last_ask < SERVE_ASK_EVERY_S)
        return;
    *last_ask = now;
    for (uint32_t i = 0; i < sv->n; i++)
        kill(sv->c[i].child, SIGUSR2); /* not reaped yet: never a reused PID */
}

static void serve_loop(struct server *sv)
{
    const struct serve_options *o = sv->s.opt;
    double until = o->duration_s > 0 ? clock_mono_s() + o->duration_s : 0, next_discover = 0;
    double last_ask = 0;
    struct pollfd *pfd = NULL;
    uint32_t cappfd = 0;
    while (!signals_stop_requested && (!until || clock_mono_s() < until)) {
        if (o->all && clock_mono_s() >= next_discover) {
            discover(sv);
            next_discover = clock_mono_s() + SERVE_DISCOVER_EVERY_S;
        }
        if (sv->n + 1 > cappfd) {
            struct pollfd *np = realloc(pfd, (sv->n + 1) * sizeof *np);
            if (!np)
                break;
            pfd = np;
            cappfd = sv->n + 1;
        }
        for (uint32_t i = 0; i < sv->n; i++)
            pfd[i] = (struct pollfd){.fd = sv->c[i].fd, .events = POLLIN};
        pfd[sv->n] = (struct pollfd){.fd = sv->s.scrape_fd, .events = POLLIN};
        int r = poll(pfd, sv->n + 1, 250);
        if (r <= 0)
            continue;
        if (pfd[sv->n].revents)
            ask_figures(sv, &last_ask);
        for (uint32_t i = sv->n; i-- > 0;)
            if (pfd[i].revents && !drain(sv, &sv->c[i]))
                retire(sv, i);
    }
    free(pfd);
}

static int compile(regex_t *re, const char *expr, const char *what, struct gp_error *err)
{
    int r = regcomp(re, expr, REG_EXTENDED | REG_NOSUB);
    if (r == 0)
        return GP_OK;
    char why[256];
    regerror(r, re, why, sizeof why);
    gp_error_set(err, GP_ERR_USAGE, "%s '%s' is not a regular expression: %s", what, expr, why);
    return err->code;
}

static int setup(struct server *sv, const struct serve_options *opt, struct gp_error *err)
{
    sv->s.opt = opt;
    pthread_mutex_init(&sv->s.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sv->s.fresh, &ca);
    pthread_condattr_destroy(&ca);
    sv->s.scrape_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sv->s.scrape_fd < 0) {
        gp_error_set(err, GP_ERR_INTERNAL, "cannot make an eventfd (%s)", strerror(errno));
        return err->code;
    }
    fleet_init(&sv->s.fleet);
    struct sockaddr_storage ss;
    bool v6;
    if (!serve_parse_listen(opt->listen, &ss, &v6)) {
        gp_error_set(err, GP_ERR_USAGE, "--listen wants ADDR:PORT or [ADDR6]:PORT, not '%s'",
                     opt->listen);
        return err->code;
    }
    ssize_t n = readlink("/proc/self/exe", sv->s.self_exe, sizeof sv->s.self_exe - 1);
    if (n <= 0) {
        gp_error_set(err, GP_ERR_INTERNAL, "cannot find gilprobe's own executable (%s)",
                     strerror(errno));
        return err->code;
    }
    sv->s.self_exe[n] = '\0';
    int r = GP_OK;
    if (opt->match && (r = compile(&sv->match, opt->match, "--match", err)) != GP_OK)
        return r;
    sv->have_match = opt->match != NULL;
    if (opt->exclude && (r = compile(&sv->exclude, opt->exclude, "--exclude", err)) != GP_OK)
        return r;
    sv->have_exclude = opt->exclude != NULL;
    if (opt->auth_file && (r = serve_auth_load(&sv->s, opt->auth_file, err)) != GP_OK)
        return r;
    /* -p targets are checked now: a wrong PID is an error at start */
    for (size_t i = 0; i < opt->npids; i++) {
        struct pyrt rt;
        if ((r = cli_attach(opt->pids[i], &rt, err)) != GP_OK)
            return r;
    }
    return GP_OK;
}

int cmd_serve(const struct serve_options *opt, struct gp_error *err)
{
    struct server *sv = calloc(1, sizeof *sv);
    if (!sv) {
        gp_error_set(err, GP_ERR_INTERNAL, "out of memory");
        return err->code;
    }
    int r = setup(sv, opt, err);
    if (r == GP_OK) {
        signals_catch_stop(true);
        signal(SIGPIPE, SIG_IGN);
        r = serve_http_start(&sv->s, err);
    }
    if (r == GP_OK) {
        fprintf(stderr, "gilprobe: serving on %s%s: /metrics, /api/report, /debug/pprof/profile, /healthz, / "
                "(%s at %g Hz; Ctrl-C ends)\n", opt->tls_cert ? "https://" : "http://",
                opt->listen, opt->all ? "every CPython process" : "the given PIDs", opt->rate_hz);
        for (size_t i = 0; i < opt->npids; i++)
            if (start_collector(sv, opt->pids[i]) != 0)
                fprintf(stderr, "gilprobe: serve: could not start a collector for PID %d (%s)\n",
                        (int)opt->pids[i], strerror(errno));
        serve_loop(sv);
        stop_collectors(sv);
        serve_http_stop(&sv->s);
        fprintf(stderr, "gilprobe: serve stopped\n");
    }
    free(sv->c);
    free(sv->rejected);
    if (sv->have_match)
        regfree(&sv->match);
    if (sv->have_exclude)
        regfree(&sv->exclude);
    serve_auth_free(&sv->s);
    if (sv->s.scrape_fd >= 0)
        close(sv->s.scrape_fd);
    fleet_free(&sv->s.fleet);
    pthread_cond_destroy(&sv->s.fresh);
    pthread_mutex_destroy(&sv->s.lock);
    free(sv);
    return r;
}
