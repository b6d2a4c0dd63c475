/* Attaching, as every command does it: the runtime found, and one warning
 * line when its version is read through its own _Py_DebugOffsets. */
#include <stdio.h>

#include "commands.h"
#include "report/common.h"

int cli_attach(pid_t pid, struct pyrt *rt, struct gp_error *err)
{
    int r = pyrt_attach(pid, rt, err);
    if (r == GP_OK && rt->unknown_version)
        fprintf(stderr, "gilprobe: warning: " REPORT_UNTESTED_FMT "\n", rt->version,
                py_layout_supported_list());
    return r;
}
