"""Threads start at a steady rate and each lives a fixed time, for a fixed
period that begins when the test says so: how many threads started and
exited is then known exactly (the truth a sampler's created/exited counts
are checked against).

Usage: churn_rate.py RATE_PER_S LIFETIME_S PERIOD_S TRIGGER COUNTFILE
Waits for the file TRIGGER to exist, starts RATE_PER_S threads a second
for PERIOD_S seconds (each sleeps LIFETIME_S), waits for them all to end,
then writes "started exited" to COUNTFILE."""
import json
import os
import sys
import threading
import time

rate, lifetime, period = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
trigger, countfile = sys.argv[4], sys.argv[5]
started = exited = 0
lock = threading.Lock()


def worker():
    global exited
    time.sleep(lifetime)
    with lock:
        exited += 1


print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
while not os.path.exists(trigger):
    time.sleep(0.01)
step = 1.0 / rate
t0 = nxt = time.monotonic()
threads = []
while nxt < t0 + period:
    while nxt <= time.monotonic() and nxt < t0 + period:  # catch up in bursts
        t = threading.Thread(target=worker, daemon=True)
        t.start()
        threads.append(t)
        started += 1
        nxt += step
    time.sleep(max(0.0, min(nxt, t0 + period) - time.monotonic()))
for t in threads:
    t.join()
with open(countfile + ".tmp", "w") as f:
    f.write("%d %d\n" % (started, exited))
os.replace(countfile + ".tmp", countfile)
while True:
    time.sleep(3600)
