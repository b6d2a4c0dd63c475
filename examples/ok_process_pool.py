"""Negative control: a CPU-bound process pool sized to the physical cores
the process may use. No finding at warning level or above."""
import multiprocessing
import os
import time

from _common import args, ready


def physical_cores():
    cores = set()
    base = "/sys/devices/system/cpu"
    for name in os.listdir(base):
        if name.startswith("cpu") and name[3:].isdigit():
            try:
                with open(os.path.join(base, name, "topology", "core_id")) as f:
                    core = f.read()
                with open(os.path.join(base, name, "topology", "physical_package_id")) as f:
                    cores.add((f.read(), core))
            except OSError:
                pass
    return min(len(cores) or 1, len(os.sched_getaffinity(0)))


def crunch(_):
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003


if __name__ == "__main__":
    a = args()
    if os.getpgrp() != os.getpid():
        os.setpgrp()  # so the whole tree can be ended at once
    workers = physical_cores()
    pool = multiprocessing.get_context("fork").Pool(workers)
    pool.map_async(crunch, range(workers))
    time.sleep(0.5)
    ready(workers=workers)
    time.sleep(a.seconds)
    os.killpg(0, 9)
