"""A parent that does little, and a Python child with four CPU-bound
threads (GIL contention inside the child, not the parent)."""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
os.setpgrp()  # one process group: the test ends parent and child at once
child = subprocess.Popen([sys.executable, os.path.join(HERE, "contention.py"), "cpu4"],
                         stdout=subprocess.PIPE, text=True)
info = json.loads(child.stdout.readline())
print(json.dumps({"ready": True, "pid": os.getpid(), "child": info["pid"]}), flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    child.kill()
