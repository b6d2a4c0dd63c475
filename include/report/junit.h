/* Check results where CI systems show them: a JUnit XML file (one test
 * case per --fail-on check) and GitHub Actions annotations. */
#ifndef GILPROBE_JUNIT_H
#define GILPROBE_JUNIT_H
#include <stdio.h>

#include "analysis/checks.h"
#include "util/errors.h"

/* GP_OK, or GP_ERR_OUTPUT with err filled. `suite` names the test suite
 * (the profiled command). */
int junit_write(const char *path, const char *suite, const struct check *c, size_t n,
                double seconds, struct gp_error *err);
/* `::error ...` lines for the checks that did not pass. */
void github_annotations(FILE *out, const struct check *c, size_t n);

#endif
