"""CPU-bound work on N threads for a fixed wall time; prints its pid, waits
for a line on stdin, then works for SECONDS and prints the wall time per
iteration of the work loop (ns), all threads together. Sized by time, not
by a count: the same run length on a fast or a slow interpreter, and a
profiler that slows the target shows as fewer iterations, i.e. more ns per
iteration.
Usage: cpu_work.py [SECONDS [THREADS [SWITCH_INTERVAL]]]"""
import os
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
if len(sys.argv) > 3:
    sys.setswitchinterval(float(sys.argv[3]))
CHUNK = 1000  # iterations between two looks at the clock
counts = [0] * THREADS


def work(i, end):
    n = 0
    while time.perf_counter() < end:
        for _ in range(CHUNK):
            n += 1
    counts[i] = n


print(os.getpid(), flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
threads = [threading.Thread(target=work, args=(i, t0 + SECONDS)) for i in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.perf_counter() - t0
print("%.6f" % (elapsed / max(1, sum(counts)) * 1e9), flush=True)
