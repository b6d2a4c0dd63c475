"""Benchmark target: N threads, each blocked D frames deep."""
import json
import os
import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
DEPTH = int(sys.argv[2]) if len(sys.argv) > 2 else 50
stop = threading.Event()
arrived = threading.Semaphore(0)


def descend(depth):
    if depth <= 1:
        arrived.release()
        stop.wait()
        return
    descend(depth - 1)


for _ in range(N - 1):
    threading.Thread(target=descend, args=(DEPTH,), daemon=True).start()
for _ in range(N - 1):
    arrived.acquire()
print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
while True:
    time.sleep(3600)
