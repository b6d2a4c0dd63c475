/* asyncio tasks (python/asyncio_tasks.h) as text - per loop, the tree of
 * who awaits whom, each task with its coroutine chain - and as the JSON
 * of `dump --tasks` (docs/schema/dump.schema.json: tasks). */
#ifndef GILPROBE_REPORT_TASKS_H
#define GILPROBE_REPORT_TASKS_H
#include <json-c/json.h>
#include <stdio.h>

#include "python/asyncio_tasks.h"

void report_tasks_text(FILE *out, const struct asyncio_tasks *t);
json_object *report_tasks_json(const struct asyncio_tasks *t);

#endif
