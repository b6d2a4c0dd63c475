"""A process that keeps starting children and does not reap some of them.

Usage: children.py ZOMBIES
Leaves ZOMBIES exited-but-unreaped children, keeps one sleeping Python child,
then starts a `sleep` child every 100 ms (the tree grows ~10/s).
"""
import json
import os
import subprocess
import sys
import time

os.setpgrp()  # one process group: the test ends the whole tree at once
zombies = int(sys.argv[1])
keep = []
for _ in range(zombies):
    keep.append(subprocess.Popen(["true"]))  # never waited for: a zombie
keep.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"]))
time.sleep(0.5)
print(json.dumps({"ready": True, "pid": os.getpid(), "zombies": zombies}), flush=True)
while True:
    keep.append(subprocess.Popen(["sleep", "3600"]))
    time.sleep(0.1)
