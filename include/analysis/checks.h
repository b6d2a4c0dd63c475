/* --fail-on: checks over a report's metrics and findings, for CI gates.
 * An expression is `METRIC OP VALUE` (OP: > >= < <= == !=, `=` for ==);
 * the check FAILS when the expression is true. Metrics are read from the
 * report's JSON document, so the names are the report's own.
 * thread[SELECTOR].METRIC reads a per-thread figure of the threads the
 * selector picks (a TID, a name, or name~=REGEX); such a check fails
 * when the expression is true for any of them. */
#ifndef GILPROBE_CHECKS_H
#define GILPROBE_CHECKS_H
#include <json-c/json.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CHECKS_MAX 32

enum check_op { CHECK_GT, CHECK_GE, CHECK_LT, CHECK_LE, CHECK_EQ, CHECK_NE };

struct check_metric;
struct check_thread_metric;

enum check_outcome { CHECK_PASSED, CHECK_FAILED, CHECK_NOT_MEASURED };

/* How thread[SELECTOR] picks threads; CHECK_REPORT: not a per-thread check. */
enum check_select { CHECK_REPORT, CHECK_BY_TID, CHECK_BY_NAME, CHECK_BY_REGEX };

struct check_thread {
    enum check_select by;
    long tid;
    char sel[96];  /* the selector as given, trimmed (the name, or name~=REGEX) */
    regex_t re;    /* CHECK_BY_REGEX: compiled by check_parse, freed by checks_free */
    const struct check_thread_metric *metric;
};

struct check {
    char expr[160]; /* as given, spaces removed (but inside thread[...]) */
    const struct check_metric *metric;
    enum check_op op;
    double value;   /* a number, or a severity's rank */
    char word[16];  /* the scenario, for scenario checks */
    /* the outcome, from checks_evaluate */
    enum check_outcome outcome;
    char measured[192]; /* the value seen, as text ("95.2", "S2,S5", "none") */
    struct check_thread thread; /* thread[SELECTOR].METRIC checks */
};

/* 0, or -1 with a one-line reason in why (unknown metric: the reason lists
 * every valid name). */
int check_parse(const char *text, struct check *c, char *why, size_t whysz);
/* Frees what check_parse kept (a selector's compiled regex); the checks
 * are not evaluated after this. */
void checks_free(struct check *c, size_t n);
void checks_evaluate(struct check *c, size_t n, json_object *report);
/* How many did not pass (failed or could not be measured). */
size_t checks_failed(const struct check *c, size_t n);
/* {"expr", "metric", "measured", "result": "passed"|"failed"|"not_measured"}[] */
json_object *checks_json(const struct check *c, size_t n);
/* One line per check that did not pass, and a summary line. */
void checks_print(FILE *out, const struct check *c, size_t n);

#endif
