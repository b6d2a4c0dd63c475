"""A process that forks workers continuously: a child every 1/RATE s that
sleeps LIFETIME s and _exits; the parent reaps them as they end, so about
RATE*LIFETIME children exist at any time.

Usage: forker.py RATE_PER_S LIFETIME_S"""
import json
import os
import sys
import time

rate, lifetime = float(sys.argv[1]), float(sys.argv[2])
forked = 0


def fork_one():
    global forked
    pid = os.fork()
    if pid == 0:
        time.sleep(lifetime)
        os._exit(0)
    forked += 1


for _ in range(int(rate * lifetime)):  # the steady state from the start
    fork_one()
print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
period = 1.0 / rate
nxt = time.monotonic()
while True:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    if time.monotonic() >= nxt:
        fork_one()
        nxt += period
    time.sleep(min(period, 0.005))
