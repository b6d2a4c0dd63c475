"""Benchmark target with known GIL shares: two threads spinning in Python
(about half of the GIL each, less what the third takes) and one that holds
it 10 ms in every 50 (about 20%), sized by time."""
import json
import os
import threading
import time


def spin():
    while True:
        pass


def burst():
    while True:
        end = time.perf_counter() + 0.010
        while time.perf_counter() < end:
            pass
        time.sleep(0.040)


for name, target in (("spin-1", spin), ("spin-2", spin), ("burst", burst)):
    threading.Thread(target=target, name=name, daemon=True).start()
print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
while True:
    time.sleep(3600)
