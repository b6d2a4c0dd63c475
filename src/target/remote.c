#include "target/remote.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

/* The kernel accepts at most IOV_MAX (1024) iovecs per side. */
#define BATCH_MAX 1024

void remote_init(struct remote *r, pid_t pid)
{
    memset(r, 0, sizeof *r);
    r->pid = pid;
}

int remote_read(struct remote *r, uint64_t addr, void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (addr == 0 || addr + len < addr) {
        r->last_errno = EFAULT;
        return -EFAULT;
    }
    if (__builtin_expect(r->backend != NULL, 0)) {
        r->calls++;
        int rc = r->backend(r->backend_ctx, addr, buf, len);
        if (rc == 0)
            r->bytes += len;
        else
            r->last_errno = -rc;
        return rc;
    }
    struct iovec local = {buf, len};
    struct iovec remote = {(void *)(uintptr_t)addr, len};
    r->calls++;
    ssize_t n = process_vm_readv(r->pid, &local, 1, &remote, 1, 0);
    if (n == (ssize_t)len) {
        r->bytes += len;
        return 0;
    }
    r->last_errno = n < 0 ? errno : EFAULT;
    return -r->last_errno;
}

size_t remote_readv(struct remote *r, struct remote_req *reqs, size_t n)
{
    struct iovec local[BATCH_MAX], remote[BATCH_MAX];
    size_t done = 0, good = 0;
    if (__builtin_expect(r->backend != NULL, 0)) {
        for (size_t i = 0; i < n; i++) {
            reqs[i].ok = reqs[i].addr && reqs[i].len &&
                         remote_read(r, reqs[i].addr, reqs[i].buf, reqs[i].len) == 0;
            good += reqs[i].ok;
        }
        return good;
    }
    while (done < n) {
        size_t k = 0, i = done;
        size_t idx[BATCH_MAX];
        for (; i < n && k < BATCH_MAX; i++) {
            reqs[i].ok = false;
            if (reqs[i].addr == 0 || reqs[i].len == 0)
                continue;
            local[k] = (struct iovec){reqs[i].buf, reqs[i].len};
            remote[k] = (struct iovec){(void *)(uintptr_t)reqs[i].addr, reqs[i].len};
            idx[k++] = i;
        }
        size_t end = i;
        if (k == 0)
            break;
        r->calls++;
        ssize_t got = process_vm_readv(r->pid, local, k, remote, k, 0);
        if (got < 0) {
            r->last_errno = errno;
            if (errno == ESRCH || errno == EPERM)
                return good;
            got = 0;
        }
        r->bytes += (uint64_t)got;
        /* The kernel stops at the first iovec it cannot read completely;
         * everything before it is whole. Retry the rest one by one, since
         * a single bad pointer must not hide the good ones after it. */
        size_t j = 0;
        for (; j < k && (size_t)got >= local[j].iov_len; j++) {
            got -= (ssize_t)local[j].iov_len;
            reqs[idx[j]].ok = true;
            good++;
        }
        for (; j < k; j++) {
            struct remote_req *q = &reqs[idx[j]];
            q->ok = remote_read(r, q->addr, q->buf, q->len) == 0;
            good += q->ok;
        }
        done = end;
    }
    return good;
}

bool remote_u64(struct remote *r, uint64_t addr, uint64_t *out)
{
    return remote_read(r, addr, out, sizeof *out) == 0;
}

bool remote_i32(struct remote *r, uint64_t addr, int32_t *out)
{
    return remote_read(r, addr, out, sizeof *out) == 0;
}
