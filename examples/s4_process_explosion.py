"""S4: a job processor starts a process per job and never joins them: the
tree grows and exited workers stay zombies. Expected finding: S4."""
import multiprocessing
import os
import time

from _common import args, ready


def job(n):
    time.sleep(0.05 if n % 2 else 30)  # half finish (zombies), half linger


if __name__ == "__main__":
    a = args()
    if os.getpgrp() != os.getpid():
        os.setpgrp()  # so the whole tree can be ended at once
    ctx = multiprocessing.get_context("fork")
    started, end, n = [], time.time() + a.seconds, 0
    ready_sent = False
    while time.time() < end:
        p = ctx.Process(target=job, args=(n,))
        p.start()
        started.append(p)  # never joined
        n += 1
        if n == 5 and not ready_sent:
            ready()
            ready_sent = True
        time.sleep(0.1)
    os.killpg(0, 9)
