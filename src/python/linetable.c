#include "python/linetable.h"

#include "python/pylayout.h"

#include <limits.h>
#include <stdbool.h>

/* Lines are summed in 64 bits: a corrupt table (or firstlineno) must not
 * overflow an int; a line outside int's range means "no line". */
static int line_or_none(long long line)
{
    return line < 0 || line > INT_MAX ? -1 : (int)line;
}

/* 3.8, 3.9 co_lnotab: (address delta, signed line delta) byte pairs. */
static int lnotab_line(const uint8_t *t, size_t len, long long line, long addrq)
{
    long addr = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        addr += t[i];
        if (addr > addrq)
            break;
        line += (int8_t)t[i + 1];
    }
    return line_or_none(line);
}

/* 3.10 co_linetable: (range length, signed line delta) pairs; a delta of
 * -128 marks a range without a line. */
static int linetable310_line(const uint8_t *t, size_t len, long long line, long addrq)
{
    long end = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        long start = end;
        end += t[i];
        int ldelta = (int8_t)t[i + 1];
        int this_line = -1;
        if (ldelta != -128) {
            line += ldelta;
            this_line = line_or_none(line);
        }
        if (start <= addrq && addrq < end)
            return this_line;
    }
    return -1;
}

static bool read_varint(const uint8_t *t, size_t len, size_t *pos, unsigned *out)
{
    unsigned v = 0, shift = 0;
    while (*pos < len && shift < 32) {
        uint8_t b = t[(*pos)++];
        v |= (unsigned)(b & 63) << shift;
        shift += 6;
        if (!(b & 64)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static bool read_svarint(const uint8_t *t, size_t len, size_t *pos, int *out)
{
    unsigned v;
    if (!read_varint(t, len, pos, &v))
        return false;
    *out = (v & 1) ? -(int)(v >> 1) : (int)(v >> 1);
    return true;
}

/* 3.11+ location table: entries start with a byte that has bit 7 set;
 * bits 3-6 are the kind, bits 0-2 the length in code units minus one. */
static int locations_line(const uint8_t *t, size_t len, long long line, long unit_q)
{
    long unit = 0;
    size_t pos = 0;
    while (pos < len) {
        uint8_t first = t[pos++];
        if (!(first & 0x80))
            return -1; /* not at an entry start: corrupt table */
        int code = (first >> 3) & 15;
        long length = (first & 7) + 1;
        int delta = 0;
        if (code == 13 || code == 14) {
            if (!read_svarint(t, len, &pos, &delta))
                return -1;
        } else if (code >= 10 && code <= 12) {
            delta = code - 10;
        }
        line += delta;
        /* Skip the column bytes: everything up to the next entry start. */
        while (pos < len && !(t[pos] & 0x80))
            pos++;
        if (unit <= unit_q && unit_q < unit + length)
            return code == 15 ? -1 : line_or_none(line);
        unit += length;
    }
    return -1;
}

int linetable_line(int format, const uint8_t *table, size_t len, int firstlineno, long offset)
{
    if (offset < 0)
        return firstlineno;
    switch (format) {
    case LT_LNOTAB:
        return lnotab_line(table, len, firstlineno, offset);
    case LT_310:
        return linetable310_line(table, len, firstlineno, offset);
    case LT_LOCATIONS:
        return locations_line(table, len, firstlineno, offset);
    default:
        return -1;
    }
}
