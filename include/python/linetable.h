/* Instruction offset -> source line, for each CPython line-table format,
 * decoded exactly as the interpreter's PyCode_Addr2Line does. */
#ifndef GILPROBE_LINETABLE_H
#define GILPROBE_LINETABLE_H
#include <stddef.h>
#include <stdint.h>

/* `offset` is in bytes for LT_LNOTAB and LT_310, in code units for
 * LT_LOCATIONS. Returns the line, or -1 when the instruction has none. A
 * negative offset (a frame that has not started) maps to firstlineno. */
int linetable_line(int format, const uint8_t *table, size_t len, int firstlineno, long offset);

#endif
