/* Detaching many links at once, private to src/ebpf/. */
#ifndef GILPROBE_EBPF_LINKS_H
#define GILPROBE_EBPF_LINKS_H
#include <stddef.h>

struct bpf_link;

/* Destroys n links (NULLs skipped) concurrently and returns when all are
 * gone. */
void links_destroy_all(struct bpf_link **links, size_t n);

#endif
