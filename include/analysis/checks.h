/* --fail-on: checks over a report's metrics and findings, for CI gates.
 * An expression is `METRIC OP VALUE` (OP: > >= < <= == !=, `=` for ==);
 * the check FAILS when the expression is true. Metrics are read from the
 * report's JSON document, so the names are the report's own. */
#ifndef GILPROBE_CHECKS_H
#define GILPROBE_CHECKS_H
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CHECKS_MAX 32

enum check_op { CHECK_GT, CHECK_GE, CHECK_LT, CHECK_LE, CHECK_EQ, CHECK_NE };

struct check_metric;

enum check_outcome { CHECK_PASSED, CHECK_FAILED, CHECK_NOT_MEASURED };

struct check {
    char expr[160]; /* as given, spaces removed */
    const struct check_metric *metric;
    enum check_op op;
    double value;   /* a number, or a severity's rank */
    char word[16];  /* the scenario, for scenario checks */
    /* the outcome, from checks_evaluate */
    enum check_outcome outcome;
    char measured[96]; /* the value seen, as text ("95.2", "S2,S5", "none") */
};

/* 0, or -1 with a one-line reason in why (unknown metric: the reason lists
 * every valid name). */
int check_parse(const char *text, struct check *c, char *why, size_t whysz);
void checks_evaluate(struct check *c, size_t n, json_object *report);
/* How many did not pass (failed or could not be measured). */
size_t checks_failed(const struct check *c, size_t n);
/* {"expr", "metric", "measured", "result": "passed"|"failed"|"not_measured"}[] */
json_object *checks_json(const struct check *c, size_t n);
/* One line per check that did not pass, and a summary line. */
void checks_print(FILE *out, const struct check *c, size_t n);

#endif
