/* The figures derived from what a run recorded (record/metrics.h). */
#ifndef GILPROBE_FIGURES_H
#define GILPROBE_FIGURES_H
#include "record/metrics.h"

/* Computes every derived figure and checks the exact GIL figures against
 * the sampled ones; call once at the end. */
void metrics_finish(struct run_metrics *m);
/* Windowed runs (gilprobe top), with m->duration_s the window's length:
 * the window's figures, leaving the runs in progress (GIL waits, event-loop
 * busy stretches) to carry on; metrics_window_reset (record/metrics.h)
 * then starts the next window. */
void metrics_window_finish(struct run_metrics *m);

#endif
