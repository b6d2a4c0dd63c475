"""A process that changes under the reader: threads start and exit all the
time, each at a different recursion depth, while another thread's stack
grows and shrinks. gilprobe must never crash or hang on it."""
import json
import os
import random
import sys
import threading
import time


def recurse(depth, then):
    if depth == 0:
        return then()
    return recurse(depth - 1, then)


def short_lived():
    recurse(random.randint(1, 120), lambda: time.sleep(0.001))


def spawner():
    while True:
        threads = [threading.Thread(target=short_lived) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def breathing_stack():
    while True:
        recurse(random.randint(1, 300), lambda: sum(range(200)))


def main():
    for target in (spawner, breathing_stack):
        threading.Thread(target=target, daemon=True).start()
    time.sleep(0.3)
    print(json.dumps({"ready": True, "pid": os.getpid(),
                      "version": "%d.%d.%d" % sys.version_info[:3]}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.setrecursionlimit(5000)
    main()
