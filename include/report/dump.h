/* `gilprobe dump` as text and as JSON. */
#ifndef GILPROBE_REPORT_DUMP_H
#define GILPROBE_REPORT_DUMP_H
#include <stdio.h>

#include "sample/dump.h"

void report_dump_text(FILE *out, const struct dump *d);

#endif
