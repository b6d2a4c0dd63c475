/* Attaching and detaching probes in bulk, private to src/ebpf/. */
#ifndef GILPROBE_EBPF_LINKS_H
#define GILPROBE_EBPF_LINKS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bpf_link;
struct bpf_object;

/* Whether the kernel has multi-uprobe links (6.6+, with its per-process
 * filter fixed): one link for every offset of a program, detached with
 * one grace period instead of one each. Probed once. */
bool links_uprobe_multi(void);
/* Before load: every uprobe/uretprobe program of obj is made attachable
 * as a multi-uprobe when the kernel has them (no-op otherwise). */
void links_prepare_uprobe_multi(struct bpf_object *obj);
/* One multi-uprobe link of prog_fd on the n file offsets of path in
 * process pid (return probes when ret): its fd, or -1 with errno set. */
int links_attach_uprobe_multi(int prog_fd, pid_t pid, const char *path, const uint64_t *off,
                              size_t n, bool ret);

/* Destroys n links (NULLs skipped) and closes nfds link fds (multi-uprobe
 * links), concurrently, and returns when all are gone. */
void links_destroy_all(struct bpf_link **links, size_t n, const int *fds, size_t nfds);

#endif
