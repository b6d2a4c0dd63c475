"""Negative control: a CPU-bound process pool sized to the physical cores
the process may use. No finding at warning level or above."""
import os

from _common import run_pool


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


if __name__ == "__main__":
    run_pool(physical_cores())
