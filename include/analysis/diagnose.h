/* Diagnoses: which known failure scenario (S1-S8, the README's table)
 * a run's metrics show, with the evidence and what to do. Reads metrics
 * only; never the target. */
#ifndef GILPROBE_DIAGNOSE_H
#define GILPROBE_DIAGNOSE_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "record/metrics.h"

enum severity { SEV_INFO = 0, SEV_WARNING = 1, SEV_CRITICAL = 2 };

#define FINDING_MAX_EVIDENCE 6
#define DIAGNOSE_MAX_FINDINGS 48
#define FINDING_MAX_CHILDREN 16

#define FINDING_MAX_ROLES 8

/* A thread a finding names: a victim (value: its p99 GIL wait, ms) or an
 * aggressor (value: its share of the victims' GIL wait, %, and the
 * function the victims waited behind most). */
struct finding_thread {
    pid_t tid;
    double value;
    const struct code_info *code;
};

/* The convoy effect's figures (rule in diagnose_blame.c). */
struct convoy_figures {
    pid_t tid, holder;
    const struct code_info *holder_code;
    double wakeups_per_s;    /* measured: the cap it runs at */
    double cap_model_per_s;  /* 1 / (switch interval + its burst) */
    double interval_ms, wait_mean_ms, burst_ms;
    double waits_per_wakeup; /* wake-ups that waited >= half an interval; < 0: unknown */
};

struct evidence {
    char metric[48]; /* e.g. "gil.contended_pct" */
    double value;
    char op[4];      /* ">=", "<=" */
    double threshold;
};

struct finding {
    char scenario[8]; /* "S1" .. "S8" */
    char title[128];
    enum severity severity;
    /* explains the others of its severity (timeouts expired by the stalls
     * S1/S3 report): first among them */
    bool leads;
    /* Rolled up from subprocesses (--subprocesses): the children it was
     * found in (the worst first, whose evidence this is) and how many were
     * sampled; nchildren 0: the target's own finding. */
    pid_t children[FINDING_MAX_CHILDREN];
    int nchildren, children_sampled;
    char verdict[512];
    struct evidence evidence[FINDING_MAX_EVIDENCE];
    int nevidence;
    char culprit[512];
    char advice[1024];
    /* S2 with latency-sensitive threads among the waiters */
    struct finding_thread victims[FINDING_MAX_ROLES], aggressors[FINDING_MAX_ROLES];
    int nvictims, naggressors;
    bool has_convoy;
    struct convoy_figures convoy;
};

struct diagnosis {
    struct finding findings[DIAGNOSE_MAX_FINDINGS];
    int n;
};

/* Applies every rule; findings sorted by severity (most severe first). */
void diagnose(const struct run_metrics *m, struct diagnosis *d);
/* For findings made elsewhere (subprocesses' roll-up): a new finding (NULL
 * when full), its evidence, and the order diagnose() gives. */
struct finding *diagnose_add(struct diagnosis *d, const char *scenario, const char *title,
                             enum severity sev);
void diagnose_evidence(struct finding *f, const char *metric, double value, const char *op,
                       double threshold);
void diagnose_sort(struct diagnosis *d);
const char *severity_name(enum severity s);

#endif
