"""A service at rest, for bench/bench_serve.py: two workers waiting on a
queue, one thread doing 1 ms of Python work every 100 ms (measured by the
clock, not by iterations), the main thread asleep. Prints its ready line."""
import json
import os
import queue
import threading
import time

jobs = queue.Queue()


def worker():
    while True:
        try:
            jobs.get(timeout=1.0)
        except queue.Empty:
            pass


def ticker():
    while True:
        end = time.perf_counter() + 0.001
        while time.perf_counter() < end:
            pass
        time.sleep(0.1)


for target in (worker, worker, ticker):
    threading.Thread(target=target, daemon=True).start()
print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
while True:
    time.sleep(3600)
