"""Threads with known Python names, for the thread-name tests: one named
by its creator, one left to its default name, one renamed while it runs,
a ThreadPoolExecutor worker, and one started through _thread before
threading was imported (no threading.Thread: no Python name). One JSON
line with the OS TIDs by role once all of them run.
Runs on CPython 3.8+."""
import _thread
import json
import os
import sys
import time

early_tid = []


def early():
    early_tid.append(_thread.get_native_id() if hasattr(_thread, "get_native_id") else None)
    while True:
        time.sleep(1)


_thread.start_new_thread(early, ())
while not early_tid:
    time.sleep(0.01)

import concurrent.futures  # noqa: E402
import threading  # noqa: E402

tids = {"early": early_tid[0], "main": threading.get_native_id()}
started = threading.Barrier(4)


def worker(role):
    tids[role] = threading.get_native_id()
    started.wait()
    while True:
        time.sleep(1)


def pooled():
    tids["pooled"] = threading.get_native_id()
    started.wait()
    time.sleep(3600)


threading.Thread(target=worker, args=("named",), name="quote-desk", daemon=True).start()
threading.Thread(target=worker, args=("default",), daemon=True).start()
renamed = threading.Thread(target=worker, args=("renamed",), name="before", daemon=True)
renamed.start()
pool = concurrent.futures.ThreadPoolExecutor(1)
pool.submit(pooled)
while len(tids) < 6:
    time.sleep(0.01)
renamed.name = "after-the-rename"
print(json.dumps({"ready": True, "pid": os.getpid(), "tids": tids,
                  "default_name": [t.name for t in threading.enumerate()
                                   if t.native_id == tids["default"]][0],
                  "pool_name": [t.name for t in threading.enumerate()
                                if t.native_id == tids["pooled"]][0],
                  "version": "%d.%d" % sys.version_info[:2]}), flush=True)
while True:
    time.sleep(1)
