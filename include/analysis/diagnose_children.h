/* --subprocesses: the children's findings rolled up into the target's
 * diagnosis, so that its bottom line covers the whole tree that was
 * sampled. Reads the children's JSON reports; never a process. */
#ifndef GILPROBE_DIAGNOSE_CHILDREN_H
#define GILPROBE_DIAGNOSE_CHILDREN_H
#include <json-c/json.h>

#include "analysis/diagnose.h"

/* One finding per scenario and title seen in any child ("S2 in 2 of 2
 * subprocesses"), with the worst child's evidence, culprit and advice and
 * the PIDs of every child that had it; d stays sorted by severity.
 * children[i] may be NULL (a child that could not be sampled). */
void diagnose_add_children(struct diagnosis *d, json_object *const *children, int n);

#endif
