#include "target/cgroup_ids.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "target/proc.h"

/* A run of exactly 64 hex digits starting at p (not part of a longer one). */
static bool hex64_at(const char *start, const char *p)
{
    if (p > start && isxdigit((unsigned char)p[-1]))
        return false;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)p[i]))
            return false;
    return !isxdigit((unsigned char)p[64]);
}

/* The last 64-hex run of a path: the innermost container. */
static void container_id(const char *text, struct cgroup_ids *out)
{
    for (const char *p = text; *p; p++)
        if (hex64_at(text, p)) {
            memcpy(out->container_id, p, 64);
            out->container_id[64] = '\0';
            p += 63;
        }
}

/* "pod" then a UID, its dashes written as underscores in systemd slice
 * names (kubepods-burstable-pod1d2c..._....slice) or kept in cgroupfs
 * paths (/kubepods/burstable/pod1d2c...-...). */
static void pod_uid(const char *text, struct cgroup_ids *out)
{
    static const int groups[] = {8, 4, 4, 4, 12};
    for (const char *p = strstr(text, "pod"); p; p = strstr(p + 3, "pod")) {
        const char *q = p + 3;
        char uid[POD_UID_MAX];
        size_t n = 0;
        bool ok = true;
        for (int g = 0; g < 5 && ok; g++) {
            for (int i = 0; i < groups[g]; i++, q++) {
                if (!isxdigit((unsigned char)*q)) {
                    ok = false;
                    break;
                }
                uid[n++] = (char)tolower((unsigned char)*q);
            }
            if (ok && g < 4) {
                if (*q != '-' && *q != '_')
                    ok = false;
                else {
                    uid[n++] = '-';
                    q++;
                }
            }
        }
        if (ok && !isxdigit((unsigned char)*q)) {
            uid[n] = '\0';
            memcpy(out->pod_uid, uid, n + 1);
        }
    }
}

void cgroup_ids_parse(const char *text, struct cgroup_ids *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return;
    container_id(text, out);
    pod_uid(text, out);
}

void cgroup_ids_of(pid_t pid, struct cgroup_ids *out)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    memset(out, 0, sizeof *out);
    if (proc_read_small_file(path, buf, sizeof buf) >= 0)
        cgroup_ids_parse(buf, out);
}
