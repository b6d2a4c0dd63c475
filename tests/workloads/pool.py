"""A pool of CPU-bound worker processes.

Usage: pool.py WORKERS   (e.g. cores + 1: oversubscribed; cores: sized right)
"""
import json
import multiprocessing
import os
import sys
import time


def spin(_):
    n = 0
    while True:
        n += 1


def main():
    workers = int(sys.argv[1])
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(workers)
    pool.map_async(spin, range(workers))
    time.sleep(0.5)
    print(json.dumps({"ready": True, "pid": os.getpid(), "workers": workers}), flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        pool.terminate()


if __name__ == "__main__":
    os.setpgrp()  # one process group: the test ends the whole tree at once
    main()
