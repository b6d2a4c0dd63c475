"""CPU-bound work on N threads for a fixed wall time; prints its pid, waits
for a line on stdin, then works for SECONDS and prints the wall time per
unit of work (ns), all threads together. Sized by time, not by a count:
the same run length on a fast or a slow interpreter, and a profiler that
slows the target shows as fewer units, i.e. more ns per unit.
The unit: an iteration of a counting loop, or with `cycles` a GIL release
and re-take around a syscall (time.sleep(0)) as fast as they go - for the
cost of what the eBPF probes do per GIL cycle.
Usage: cpu_work.py [SECONDS [THREADS [SWITCH_INTERVAL [cycles]]]]"""
import os
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
if len(sys.argv) > 3:
    sys.setswitchinterval(float(sys.argv[3]))
CYCLES = len(sys.argv) > 4 and sys.argv[4] == "cycles"
CHUNK = 100 if CYCLES else 1000  # units between two looks at the clock
counts = [0] * THREADS


def count(i, end):
    n = 0
    while time.perf_counter() < end:
        for _ in range(CHUNK):
            n += 1
    counts[i] = n


def cycle(i, end):
    n = 0
    sleep = time.sleep
    while time.perf_counter() < end:
        for _ in range(CHUNK):
            sleep(0)
        n += CHUNK
    counts[i] = n


print(os.getpid(), flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
threads = [threading.Thread(target=cycle if CYCLES else count, args=(i, t0 + SECONDS))
           for i in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.perf_counter() - t0
print("%.6f" % (elapsed / max(1, sum(counts)) * 1e9), flush=True)
