/* Which container and which Kubernetes pod a process runs in, as its
 * cgroup path tells (labels for `gilprobe serve`): the 64-hex container id
 * of Docker, containerd, CRI-O and podman scopes, and the pod UID of a
 * kubepods slice or path. Empty strings when the path has none. */
#ifndef GILPROBE_CGROUP_IDS_H
#define GILPROBE_CGROUP_IDS_H
#include <sys/types.h>

#define CGROUP_ID_MAX 65 /* 64 hex digits */
#define POD_UID_MAX 37   /* 8-4-4-4-12 */

struct cgroup_ids {
    char container_id[CGROUP_ID_MAX];
    char pod_uid[POD_UID_MAX];
};

/* From the text of /proc/PID/cgroup (any number of lines). */
void cgroup_ids_parse(const char *text, struct cgroup_ids *out);
/* From /proc/PID/cgroup itself; both empty when it cannot be read. */
void cgroup_ids_of(pid_t pid, struct cgroup_ids *out);

#endif
