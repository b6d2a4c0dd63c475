"""S6: a CPU-bound pool sized by os.cpu_count() + 1 on a machine with fewer
physical cores: the workers slow each other down. Expected finding: S6."""
import multiprocessing
import os
import time

from _common import args, ready


def crunch(_):
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003


if __name__ == "__main__":
    a = args()
    if os.getpgrp() != os.getpid():
        os.setpgrp()  # so the whole tree can be ended at once
    workers = (os.cpu_count() or 1) + 1
    pool = multiprocessing.get_context("fork").Pool(workers)
    pool.map_async(crunch, range(workers))
    time.sleep(0.5)
    ready(workers=workers)
    time.sleep(a.seconds)
    os.killpg(0, 9)
