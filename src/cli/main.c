/* gilprobe: command line entry point. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "native/unwind.h"
#include "record/loops.h"
#include "report/sample.h"
#include "report/stack_exports.h"
#include "report/top_view.h"
#include "sample/dump.h"
#include "target/stopper.h"
#include "util/errors.h"
#include "util/version.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gilprobe -p PID [-d SECONDS] [-r HZ] [--json] [-o FILE] [--bpf|--no-bpf]\n"
            "                [--long-hold-ms MS] [--stall-ms MS] [--subprocesses]\n"
            "                [--fail-on EXPR]... [--junit FILE]\n"
            "                [--collapsed FILE] [--speedscope FILE] [--pprof FILE]\n"
            "                [--state STATE[,STATE]]\n"
            "                [--native] [--html FILE]\n"
            "       gilprobe run [report options] -- COMMAND [ARGS...]\n"
            "       gilprobe dump -p PID [--json] [-o FILE] [--blocking] [--stats] [--native] [--tasks]\n"
            "       gilprobe top -p PID [-i SECONDS] [-r HZ] [--sort KEY] [--thread T] [--no-bpf]\n"
            "                [-n ITERATIONS]\n"
            "       gilprobe watch -p PID [-r HZ] [-d SECONDS] [--trigger EXPR]... [--out DIR]\n"
            "                [--window SECONDS] [--keep SECONDS] [--cooldown SECONDS] [--html]\n"
            "       gilprobe serve [--listen ADDR:PORT] (-p PID... | --all [--match RE]\n"
            "                [--exclude RE]) [-r HZ] [--tls-cert F --tls-key F] [--auth-file F]\n"
            "\n"
            "  -p PID      sample a running CPython 3.8-3.15 process without stopping it\n"
            "              and report where the GIL goes, who waits for it and for how\n"
            "              long, what every thread does, and which locks they wait on\n"
            "  -d SECONDS  how long to sample (default 5; Ctrl-C ends early)\n"
            "  -r HZ       samples per second (default 1000)\n"
            "  --bpf       exact GIL hold/wait times with eBPF uprobes (the default where\n"
            "              possible: root, kernel BTF, take_gil/drop_gil symbols; --bpf\n"
            "              also where the fallback probes would be costly)\n"
            "  --no-bpf    no eBPF at all: sampled GIL figures, thread states from /proc\n"
            "  --no-blame  do not join each GIL wait with the holds it sat behind in the\n"
            "              kernel (exact blame; its cost: docs/performance.md); the\n"
            "              sampled blame stays\n"
            "  --no-asyncio  do not read asyncio's tasks and timers (running task names,\n"
            "              timer heaps, task counts): stalls are still found and timed\n"
            "  --long-hold-ms MS  report GIL holds at least this long with the\n"
            "              Python stack that held it (default 5)\n"
            "  --stall-ms MS  an asyncio event loop busy this long without waiting in\n"
            "              its selector is stalled (default 100)\n"
            "  --subprocesses  sample the target's Python child processes too\n"
            "  --collapsed FILE  also write the stacks as folded lines for flamegraph.pl\n"
            "              or inferno: thread;[state];outermost;...;innermost COUNT\n"
            "  --speedscope FILE  also write the stacks as a speedscope profile (JSON),\n"
            "              one profile per thread, the state as the root frame\n"
            "  --pprof FILE  also write the stacks as a gzipped pprof profile (go tool\n"
            "              pprof, Pyroscope, Parca): sample types samples, gil_held and\n"
            "              gil_wait; labels thread, state, tid ('-': standard output)\n"
            "  --state STATE  only these states in --collapsed/--speedscope (repeatable,\n"
            "              or a comma list): gil-held, gil-wait, lock-wait, idle-wait,\n"
            "              io-wait, sleep, nogil-running, other\n"
            "  --fail-on EXPR  fail (exit 9) when EXPR holds for the run, e.g.\n"
            "              gil.held_pct>80, thread.max_gil_wait_pct>30, loop.stall_max_ms>100,\n"
            "              gil.wait_p99_ms>20, finding>=warning, scenario=S2, and per thread\n"
            "              (TID, name or name~=REGEX) thread[quote-desk].gil_wait_p99_ms>20\n"
            "              (repeatable; an unknown metric is a usage error that lists them all)\n"
            "  --junit FILE  write the checks as JUnit XML (one test case each)\n"
            "  --native    mixed C and Python stacks: each thread is stopped alone (ptrace)\n"
            "              for its unwind, so the default rate drops to 100 Hz; the report\n"
            "              gives the pause imposed (total, worst per sample)\n"
            "  --html FILE  also write the report as one self-contained HTML page (the\n"
            "              Diagnosis, a flame graph by thread state, the thread table)\n"
            "\n"
            "  run         start COMMAND, sample it from its first Python instruction to\n"
            "              its exit, print the report on stderr (or -o FILE) and exit\n"
            "              with COMMAND's exit code, or 9 when a --fail-on check failed\n"
            "\n"
            "  dump        print every Python thread of a running CPython 3.8-3.15 process:\n"
            "              GIL holder, kernel state, what it is blocked on, Python stack\n"
            "  -p PID      the process to read\n"
            "  --json      one JSON document (schema 1, see README) instead of text\n"
            "  -o FILE     write the report to FILE instead of standard output\n"
            "  --blocking  stop all threads (ptrace) for a consistent snapshot;\n"
            "              they are always resumed. Default: never stops the target\n"
            "  --stats     print what the read cost (bytes, syscalls) on stderr\n"
            "  --native    C frames too (function, library+offset, file:line), merged with\n"
            "              the Python ones; threads without Python listed too. Stops each\n"
            "              thread alone for its unwind (at most ~120 ms, usually < 1 ms)\n"
            "  --tasks     the asyncio tasks too: per event loop, each task's name, state\n"
            "              and what it awaits\n"
            "  --version   print gilprobe's version\n"
            "\n"
            "  top         live view of a running CPython process, refreshed every interval:\n"
            "              GIL held/contended, waiters, hand-offs, and per thread the share\n"
            "              of the interval holding/waiting for the GIL, on locks, in I/O,\n"
            "              asleep, running without the GIL, CPU, and its current frame\n"
            "  -i SECONDS  interval (default 1)\n"
            "  --sort KEY  gil-wait (default), held, cpu, lock, tid or name; keys w h c l\n"
            "              t n change it live, q quits\n"
            "  --thread TID|NAME  the thread whose GIL waits are explained under the\n"
            "              table (whom it waits behind; default the first row); the\n"
            "              arrow keys (or j/k) move it live\n"
            "  -n ITERATIONS  stop after that many intervals. When standard output is\n"
            "              not a terminal, one plain-text block is printed per interval\n"
            "\n"
            "  watch       a flight recorder: sample a process for hours (default 100 Hz,\n"
            "              exact eBPF timings where possible), keep a per-second timeline\n"
            "              (--keep, default 600 s) and the raw samples of the last --window\n"
            "              seconds (default 10); when a --trigger (the --fail-on language,\n"
            "              evaluated every second over the window) fires, record half a\n"
            "              window more and write an incident bundle to --out DIR (default\n"
            "              ./gilprobe-incidents): report.json/.txt, timeline.json, stacks,\n"
            "              speedscope.json and index.html. --cooldown (default 20 s) before\n"
            "              the same trigger fires again; SIGUSR1 writes a bundle at once.\n"
            "              Ends on Ctrl-C/SIGTERM, -d, or the target's exit (exit 0)\n"
            "\n"
            "  serve       export the GIL, thread states, locks and event loops of many\n"
            "              processes to Prometheus: /metrics (OpenMetrics or text format),\n"
            "              /api/report?pid=PID&seconds=N (the --json report), /healthz, /.\n"
            "              --listen (default 127.0.0.1:9464), -p PID (repeatable) or --all\n"
            "              (every CPython process, checked every 3 s; --match/--exclude\n"
            "              filter command lines by regular expression), -r HZ (default\n"
            "              0.5: exact eBPF figures do not depend on it), --window SECONDS (findings hold over it, default 10),\n"
            "              --tls-cert/--tls-key (PEM), --auth-file F ('Bearer TOKEN' and\n"
            "              'user:password' lines; /healthz stays open)\n"
            "\n"
            "exit codes: 0 ok, 1 internal error, 2 usage, 3 no such process,\n"
            "            4 permission denied, 5 not a Python process,\n"
            "            6 Python version not supported, 7 process exited, 8 output failed,\n"
            "            9 a --fail-on check failed; run: the program's own exit code\n"
            "            (128+N when killed by signal N), 127 when it could not start\n");
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "gilprobe: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "; see 'gilprobe --help'\n");
    return GP_ERR_USAGE;
}

static int parse_pid(const char *s, pid_t *pid)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 4194304)
        return -1;
    *pid = (pid_t)v;
    return 0;
}

/* Exit with gilprobe's one-line error when a command failed. */
static int finish(int r, const struct gp_error *err)
{
    if (r != GP_OK)
        fprintf(stderr, "gilprobe: %s\n", err->msg[0] ? err->msg : "failed");
    return r;
}

#define OPTION_GO_ON (-1)

/* getopt results every command treats alike: -p, -h and errors. Returns
 * OPTION_GO_ON to go on (*shared tells whether c was one of them), else
 * the exit code to return now. */
static int shared_option(int c, char **argv, pid_t *pid, bool *have_pid, bool *shared)
{
    *shared = true;
    switch (c) {
    case 'p':
        if (parse_pid(optarg, pid) != 0)
            return usage_error("'%s' is not a process id", optarg);
        *have_pid = true;
        return OPTION_GO_ON;
    case 'h': usage(stdout); return GP_OK;
    case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
    case '?': return usage_error("unknown option '%s'", argv[optind - 1]);
    default: *shared = false; return OPTION_GO_ON;
    }
}

static int parse_positive(const char *s, double max, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v > 0) || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Options of the sampling report, shared by `-p PID` and `run`. Returns
 * OPTION_GO_ON when every option was good, else the exit code. */
static int parse_report_options(int argc, char **argv, struct sample_options *opt, bool run,
                                bool *have_pid)
{
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},      {"duration", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'r'},     {"json", no_argument, NULL, 'j'},
        {"output", required_argument, NULL, 'o'},   {"help", no_argument, NULL, 'h'},
        {"no-bpf", no_argument, NULL, 'n'},         {"bpf", no_argument, NULL, 'B'},
        {"long-hold-ms", required_argument, NULL, 'L'},
        {"stall-ms", required_argument, NULL, 'S'},
        {"subprocesses", no_argument, NULL, 'P'},   {"fail-on", required_argument, NULL, 'F'},
        {"junit", required_argument, NULL, 'J'},    {"collapsed", required_argument, NULL, 'C'},
        {"speedscope", required_argument, NULL, 'G'}, {"pprof", required_argument, NULL, 'Q'},
        {"state", required_argument, NULL, 'T'},    {"native", no_argument, NULL, 'N'},
        {"html", required_argument, NULL, 'H'},    {"no-blame", no_argument, NULL, 'X'},
        {"no-asyncio", no_argument, NULL, 'Y'},
        {NULL, 0, NULL, 0}};
    static struct check checks[CHECKS_MAX];
    bool rate_given = false;
    int c;
    opterr = 0;
    optind = 1;
    /* run: options end at the command ("+": stop at the first non-option). */
    while ((c = getopt_long(argc, argv, run ? "+:p:d:r:o:h" : ":p:d:r:o:h", longopts, NULL)) != -1) {
        bool shared;
        if (run && c == 'p')
            return usage_error("%srun starts the program itself: drop -p", "");
        int r = shared_option(c, argv, &opt->pid, have_pid, &shared);
        if (r != OPTION_GO_ON)
            return r;
        switch (shared ? 0 : c) {
        case 'd':
            if (parse_positive(optarg, 86400, &opt->duration_s) != 0)
                return usage_error("-d wants seconds (> 0, at most a day), not '%s'", optarg);
            break;
        case 'r':
            if (parse_positive(optarg, SAMPLER_MAX_HZ, &opt->rate_hz) != 0)
                return usage_error("-r wants a rate in Hz (> 0, at most 100000), not '%s'", optarg);
            rate_given = true;
            break;
        case 'N': opt->native = true; break;
        case 'j': opt->json = true; break;
        case 'o': opt->output = optarg; break;
        case 'n': opt->no_bpf = true; break;
        case 'X': opt->no_blame = true; break;
        case 'Y': opt->no_asyncio = true; break;
        case 'P': opt->subprocesses = true; break;
        case 'B': /* the default; also: exact probes even where costly */
            opt->no_bpf = false;
            opt->force_bpf = true;
            break;
        case 'L':
            if (parse_positive(optarg, 1e6, &opt->long_hold_ms) != 0)
                return usage_error("--long-hold-ms wants milliseconds (> 0), not '%s'", optarg);
            break;
        case 'S':
            if (parse_positive(optarg, 1e6, &opt->stall_ms) != 0)
                return usage_error("--stall-ms wants milliseconds (> 0), not '%s'", optarg);
            break;
        case 'F': {
            char why[2600];
            if (opt->nchecks == CHECKS_MAX)
                return usage_error("at most %s --fail-on checks", "32");
            if (check_parse(optarg, &checks[opt->nchecks], why, sizeof why) != 0) {
                fprintf(stderr, "gilprobe: %s\n", why);
                return GP_ERR_USAGE;
            }
            opt->checks = checks;
            opt->nchecks++;
            break;
        }
        case 'J': opt->junit = optarg; break;
        case 'C': opt->collapsed_path = optarg; break;
        case 'G': opt->speedscope_path = optarg; break;
        case 'Q': opt->pprof_path = optarg; break;
        case 'H': opt->html_path = optarg; break;
        case 'T': {
            char msg[320];
            if (report_stacks_parse_states(optarg, &opt->state_mask, msg, sizeof msg) != 0)
                return usage_error("%s", msg);
            break;
        }
        default: break;
        }
    }
    /* Every native sample stops each thread briefly: sample less often. */
    if (opt->native && !rate_given)
        opt->rate_hz = NATIVE_DEFAULT_HZ;
    if (opt->junit && !opt->nchecks)
        return usage_error("%s--junit reports --fail-on checks: give at least one", "");
    if (opt->state_mask && !opt->collapsed_path && !opt->speedscope_path)
        return usage_error("%s--state only narrows --collapsed and --speedscope; give one", "");
    return OPTION_GO_ON;
}

static struct sample_options default_report_options(void)
{
    return (struct sample_options){.duration_s = SAMPLER_DEFAULT_SECONDS,
                                   .rate_hz = SAMPLER_DEFAULT_HZ,
                                   .long_hold_ms = 5.0,
                                   .stall_ms = LOOPS_DEFAULT_STALL_MS};
}

static int run_sample(int argc, char **argv)
{
    struct sample_options opt = default_report_options();
    bool have_pid = false;
    int r = parse_report_options(argc, argv, &opt, false, &have_pid);
    if (r == OPTION_GO_ON && optind < argc)
        r = usage_error("unexpected argument '%s'", argv[optind]);
    else if (r == OPTION_GO_ON && !have_pid)
        r = usage_error("%sa process to sample is needed: -p PID", "");
    if (r == OPTION_GO_ON) {
        struct gp_error err = {0};
        r = cmd_sample(&opt, &err);
        r = r == GP_CHECKS_FAILED ? r : finish(r, &err);
    }
    checks_free(opt.checks, opt.nchecks);
    return r;
}

static int run_run(int argc, char **argv)
{
    struct sample_options opt = default_report_options();
    opt.duration_s = 86400; /* until the program exits */
    bool have_pid = false;
    int r = parse_report_options(argc, argv, &opt, true, &have_pid);
    if (r == OPTION_GO_ON && optind >= argc)
        r = usage_error("%srun needs a command: gilprobe run [options] -- python app.py", "");
    if (r == OPTION_GO_ON) {
        struct gp_error err = {0};
        r = cmd_run(&opt, argv + optind, &err); /* it reports its own errors */
    }
    checks_free(opt.checks, opt.nchecks);
    return r;
}

static int run_top(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},      {"interval", required_argument, NULL, 'i'},
        {"rate", required_argument, NULL, 'r'},     {"sort", required_argument, NULL, 's'},
        {"no-bpf", no_argument, NULL, 'B'},         {"iterations", required_argument, NULL, 'n'},
        {"thread", required_argument, NULL, 'T'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct top_options opt = {.interval_s = TOP_DEFAULT_INTERVAL_S,
                              .rate_hz = SAMPLER_DEFAULT_HZ,
                              .sort = TOP_SORT_GIL_WAIT};
    bool have_pid = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":p:i:r:n:h", longopts, NULL)) != -1) {
        bool shared;
        int r = shared_option(c, argv, &opt.pid, &have_pid, &shared);
        if (r != OPTION_GO_ON)
            return r;
        double n;
        switch (shared ? 0 : c) {
        case 'i':
            if (parse_positive(optarg, 3600, &opt.interval_s) != 0 || opt.interval_s < 0.1)
                return usage_error("-i wants seconds (0.1 to 3600), not '%s'", optarg);
            break;
        case 'r':
            if (parse_positive(optarg, SAMPLER_MAX_HZ, &opt.rate_hz) != 0)
                return usage_error("-r wants a rate in Hz (> 0, at most 100000), not '%s'", optarg);
            break;
        case 's':
            if (top_sort_parse(optarg, &opt.sort) != 0) {
                char fmt[160];
                snprintf(fmt, sizeof fmt, "unknown sort key '%%s' (valid: %s)", top_sort_keys());
                return usage_error(fmt, optarg);
            }
            break;
        case 'B': opt.no_bpf = true; break;
        case 'n':
            if (parse_positive(optarg, 1e9, &n) != 0 || n != (double)(long)n)
                return usage_error("-n wants a whole number of intervals (> 0), not '%s'", optarg);
            opt.iterations = (long)n;
            break;
        case 'T':
            if (!*optarg)
                return usage_error("--thread wants a TID or a thread name, not '%s'", optarg);
            opt.thread = optarg;
            break;
        default: break;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!have_pid)
        return usage_error("%stop needs -p PID", "");
    struct gp_error err = {0};
    return finish(cmd_top(&opt, &err), &err);
}

static int run_watch(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},      {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'}, {"trigger", required_argument, NULL, 't'},
        {"out", required_argument, NULL, 'O'},      {"window", required_argument, NULL, 'w'},
        {"keep", required_argument, NULL, 'k'},     {"cooldown", required_argument, NULL, 'c'},
        {"html", no_argument, NULL, 'H'},           {"no-bpf", no_argument, NULL, 'B'},
        {"stall-ms", required_argument, NULL, 'S'}, {"long-hold-ms", required_argument, NULL, 'L'},
        {"export-fd", required_argument, NULL, 'X'}, /* serve's collectors */
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    static struct check triggers[CHECKS_MAX];
    struct watch_options opt = {.rate_hz = WATCH_DEFAULT_HZ,
                                .out_dir = WATCH_DEFAULT_OUT,
                                .window_s = WATCH_DEFAULT_WINDOW_S,
                                .keep_s = WATCH_DEFAULT_KEEP_S,
                                .cooldown_s = WATCH_DEFAULT_COOLDOWN_S,
                                .stall_ms = LOOPS_DEFAULT_STALL_MS,
                                .long_hold_ms = 5.0,
                                .triggers = triggers};
    bool have_pid = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":p:r:d:h", longopts, NULL)) != -1) {
        bool shared;
        int r = shared_option(c, argv, &opt.pid, &have_pid, &shared);
        if (r != OPTION_GO_ON)
            return r;
        switch (shared ? 0 : c) {
        case 'r':
            if (parse_positive(optarg, 10000, &opt.rate_hz) != 0)
                return usage_error("-r wants a rate in Hz (> 0, at most 10000), not '%s'", optarg);
            break;
        case 'd':
            if (parse_positive(optarg, 366.0 * 86400, &opt.duration_s) != 0)
                return usage_error("-d wants seconds (> 0, at most a year), not '%s'", optarg);
            break;
        case 't': {
            char why[2600];
            if (opt.ntriggers == CHECKS_MAX)
                return usage_error("at most %s --trigger expressions", "32");
            if (check_parse(optarg, &triggers[opt.ntriggers], why, sizeof why) != 0) {
                fprintf(stderr, "gilprobe: %s\n", why);
                return GP_ERR_USAGE;
            }
            opt.ntriggers++;
            break;
        }
        case 'O': opt.out_dir = optarg; break;
        case 'w':
            if (parse_positive(optarg, 300, &opt.window_s) != 0 || opt.window_s < 2)
                return usage_error("--window wants seconds (2 to 300), not '%s'", optarg);
            break;
        case 'k':
            if (parse_positive(optarg, 7 * 86400, &opt.keep_s) != 0 || opt.keep_s < 10)
                return usage_error("--keep wants seconds (10 to a week), not '%s'", optarg);
            break;
        case 'c':
            if (parse_positive(optarg, 86400, &opt.cooldown_s) != 0)
                return usage_error("--cooldown wants seconds (> 0, at most a day), not '%s'", optarg);
            break;
        case 'H': break; /* every bundle has its index.html */
        case 'X': {
            pid_t fd;
            if (parse_pid(optarg, &fd) != 0 || !(opt.export_out = fdopen(fd, "w")))
                return usage_error("--export-fd wants an open file descriptor, not '%s'", optarg);
            break;
        }
        case 'B': opt.no_bpf = true; break;
        case 'S':
            if (parse_positive(optarg, 1e6, &opt.stall_ms) != 0)
                return usage_error("--stall-ms wants milliseconds (> 0), not '%s'", optarg);
            break;
        case 'L':
            if (parse_positive(optarg, 1e6, &opt.long_hold_ms) != 0)
                return usage_error("--long-hold-ms wants milliseconds (> 0), not '%s'", optarg);
            break;
        default: break;
        }
    }
    int r = OPTION_GO_ON;
    if (optind < argc)
        r = usage_error("unexpected argument '%s'", argv[optind]);
    else if (!have_pid)
        r = usage_error("%swatch needs -p PID", "");
    else if (strlen(opt.out_dir) > 3000)
        r = usage_error("%s--out: the path is too long", "");
    if (r == OPTION_GO_ON) {
        struct gp_error err = {0};
        r = finish(cmd_watch(&opt, &err), &err);
    }
    checks_free(triggers, opt.ntriggers);
    return r;
}

static int run_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},      {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'}, {"listen", required_argument, NULL, 'l'},
        {"all", no_argument, NULL, 'a'},            {"match", required_argument, NULL, 'm'},
        {"exclude", required_argument, NULL, 'x'},  {"window", required_argument, NULL, 'w'},
        {"tls-cert", required_argument, NULL, 'C'}, {"tls-key", required_argument, NULL, 'K'},
        {"auth-file", required_argument, NULL, 'A'}, {"no-bpf", no_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    static struct serve_options opt = {.listen = SERVE_DEFAULT_LISTEN,
                                       .rate_hz = SERVE_DEFAULT_HZ,
                                       .window_s = WATCH_DEFAULT_WINDOW_S};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":p:r:d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (opt.npids == SERVE_MAX_PIDS)
                return usage_error("at most %s -p targets (or --all)", "256");
            if (parse_pid(optarg, &opt.pids[opt.npids]) != 0)
                return usage_error("-p wants a process ID, not '%s'", optarg);
            opt.npids++;
            break;
        case 'r':
            if (parse_positive(optarg, 1000, &opt.rate_hz) != 0)
                return usage_error("-r wants a rate in Hz (> 0, at most 1000), not '%s'", optarg);
            break;
        case 'd':
            if (parse_positive(optarg, 366.0 * 86400, &opt.duration_s) != 0)
                return usage_error("-d wants seconds (> 0, at most a year), not '%s'", optarg);
            break;
        case 'w':
            if (parse_positive(optarg, 300, &opt.window_s) != 0 || opt.window_s < 2)
                return usage_error("--window wants seconds (2 to 300), not '%s'", optarg);
            break;
        case 'l': opt.listen = optarg; break;
        case 'a': opt.all = true; break;
        case 'm': opt.match = optarg; break;
        case 'x': opt.exclude = optarg; break;
        case 'C': opt.tls_cert = optarg; break;
        case 'K': opt.tls_key = optarg; break;
        case 'A': opt.auth_file = optarg; break;
        case 'B': opt.no_bpf = true; break;
        case 'h': usage(stdout); return GP_OK;
        case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!opt.npids && !opt.all)
        return usage_error("%sserve needs -p PID (repeatable) or --all", "");
    if ((opt.match || opt.exclude) && !opt.all)
        return usage_error("%s--match and --exclude go with --all", "");
    if (!opt.tls_cert != !opt.tls_key)
        return usage_error("%s--tls-cert and --tls-key go together", "");
    struct gp_error err = {0};
    return finish(cmd_serve(&opt, &err), &err);
}

static int run_dump(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},  {"json", no_argument, NULL, 'j'},
        {"output", required_argument, NULL, 'o'}, {"blocking", no_argument, NULL, 'b'},
        {"stats", no_argument, NULL, 's'},      {"native", no_argument, NULL, 'N'},
        {"tasks", no_argument, NULL, 'T'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct dump_options opt = {0};
    bool have_pid = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":p:o:h", longopts, NULL)) != -1) {
        bool shared;
        int r = shared_option(c, argv, &opt.pid, &have_pid, &shared);
        if (r != OPTION_GO_ON)
            return r;
        switch (shared ? 0 : c) {
        case 'j': opt.json = true; break;
        case 'o': opt.output = optarg; break;
        case 'b': opt.blocking = true; break;
        case 's': opt.stats = true; break;
        case 'N': opt.native = true; break;
        case 'T': opt.tasks = true; break;
        default: break;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!have_pid)
        return usage_error("%sdump needs -p PID", "");
    struct gp_error err = {0};
    return finish(cmd_dump(&opt, &err), &err);
}

int main(int argc, char **argv)
{
    stopper_install_signal_handlers();
    if (argc < 2) {
        usage(stderr);
        return GP_ERR_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return GP_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("gilprobe %s\n", GILPROBE_VERSION);
        return GP_OK;
    }
    if (strcmp(argv[1], "dump") == 0)
        return run_dump(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0)
        return run_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "top") == 0)
        return run_top(argc - 1, argv + 1);
    if (strcmp(argv[1], "watch") == 0)
        return run_watch(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return run_serve(argc - 1, argv + 1);
    if (argv[1][0] == '-')
        return run_sample(argc, argv);
    return usage_error("unknown command '%s'", argv[1]);
}
