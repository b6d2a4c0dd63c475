"""A Python process that only sleeps: a target for error-path tests."""
import json
import os
import sys
import time

print(json.dumps({"ready": True, "pid": os.getpid(),
                  "version": "%d.%d.%d" % sys.version_info[:3]}), flush=True)
while True:
    time.sleep(3600)
