"""Many threads idle in waits while the heap keeps growing.

Usage: threads_mem.py THREADS MB_PER_S
"""
import json
import os
import sys
import threading
import time

threads, rate = int(sys.argv[1]), float(sys.argv[2])
stop = threading.Event()
for _ in range(threads):
    threading.Thread(target=stop.wait, daemon=True).start()
hoard = []
time.sleep(0.3)
print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
while True:
    hoard.append(bytearray(int(rate * 1024 * 1024 / 10)))  # touched: resident
    for chunk in hoard[-1:]:
        chunk[::4096] = b"x" * len(chunk[::4096])
    time.sleep(0.1)
