#include "pylayout.h"

#include <stdio.h>

extern const struct py_layout py_generated_layouts[];
extern const size_t py_generated_layout_count;

const struct py_layout *py_layout_for(int major, int minor, bool free_threaded)
{
    for (size_t i = 0; i < py_generated_layout_count; i++) {
        unsigned hex = (unsigned)py_generated_layouts[i].version_hex;
        if ((int)(hex >> 24) == major && (int)((hex >> 16) & 0xff) == minor &&
            (py_generated_layouts[i].free_threaded == 1) == free_threaded)
            return &py_generated_layouts[i];
    }
    return NULL;
}

const char *py_layout_supported_list(void)
{
    static char buf[128];
    if (buf[0])
        return buf;
    size_t o = 0;
    for (size_t i = 0; i < py_generated_layout_count && o < sizeof buf - 16; i++) {
        unsigned hex = (unsigned)py_generated_layouts[i].version_hex;
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%u.%u%s", i ? ", " : "", hex >> 24,
                              (hex >> 16) & 0xff,
                              py_generated_layouts[i].free_threaded == 1 ? "t" : "");
    }
    return buf;
}
