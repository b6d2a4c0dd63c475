"""Two threads, and the threading module never imported (only _thread):
no table of Python thread names to read. One JSON line once both run."""
import _thread
import json
import os
import sys
import time

started = []


def sleeper():
    started.append(1)
    while True:
        time.sleep(1)


_thread.start_new_thread(sleeper, ())
while not started:
    time.sleep(0.01)
assert "threading" not in sys.modules
print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
while True:
    time.sleep(1)
