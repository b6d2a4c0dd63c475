"""The main thread alone: half a second of pure-Python CPU work, then a
blocking read of a pipe that a child fills after two seconds, again and
again. Optimising builds inline the GIL release before the read (Debian's
LTO), so no probed function sees it: the second of reading must still not
count as holding the GIL. Prints the ready line once running."""
import json
import os
import subprocess
import time


def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
while True:
    busy(0.5)
    child = subprocess.Popen(["sleep", "2"], stdout=subprocess.PIPE)
    child.stdout.read()
    child.wait()
