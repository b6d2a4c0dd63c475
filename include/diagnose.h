/* Diagnoses: which known failure scenario (S1-S8, ../shared/SCENARIOS.md)
 * a run's metrics show, with the evidence and what to do. Reads metrics
 * only; never the target. */
#ifndef GILPROBE_DIAGNOSE_H
#define GILPROBE_DIAGNOSE_H
#include <stddef.h>

#include "metrics.h"

enum severity { SEV_INFO = 0, SEV_WARNING = 1, SEV_CRITICAL = 2 };

#define FINDING_MAX_EVIDENCE 6
#define DIAGNOSE_MAX_FINDINGS 32

struct evidence {
    const char *metric; /* e.g. "gil.contended_pct" */
    double value;
    const char *op;     /* ">=", "<=" */
    double threshold;
};

struct finding {
    const char *scenario; /* "S1" .. "S8" */
    const char *title;
    enum severity severity;
    char verdict[256];
    struct evidence evidence[FINDING_MAX_EVIDENCE];
    int nevidence;
    char culprit[512];
    char advice[1024];
};

struct diagnosis {
    struct finding findings[DIAGNOSE_MAX_FINDINGS];
    int n;
};

/* Applies every rule; findings sorted by severity (most severe first). */
void diagnose(const struct run_metrics *m, struct diagnosis *d);
const char *severity_name(enum severity s);

#endif
