/* `gilprobe run [options] -- COMMAND ARGS...` */
#ifndef GILPROBE_RUN_H
#define GILPROBE_RUN_H
#include "errors.h"
#include "sample_report.h"

/* The program's exit code (128+N when killed by signal N), or
 * GP_CHECKS_FAILED, or gilprobe's error code (err filled and printed). */
int cmd_run(struct sample_options *opt, char **argv, struct gp_error *err);

#endif
