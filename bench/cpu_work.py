"""Fixed CPU-bound work on N threads; prints its pid, waits for a line on
stdin, then does the work and prints the wall time it took.
Usage: cpu_work.py [ITERATIONS [THREADS [SWITCH_INTERVAL]]]"""
import os
import sys
import threading
import time

ITERATIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 12_000_000
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
if len(sys.argv) > 3:
    sys.setswitchinterval(float(sys.argv[3]))


def work():
    n = 0
    for _ in range(ITERATIONS // THREADS * 4):
        n += 1


print(os.getpid(), flush=True)
sys.stdin.readline()
threads = [threading.Thread(target=work) for _ in range(THREADS)]
t0 = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
print("%.6f" % (time.perf_counter() - t0), flush=True)
