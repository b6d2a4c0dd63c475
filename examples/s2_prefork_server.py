"""S2 in a pre-fork server (the gunicorn `-w 2 -k gthread --threads 4`
shape): a master forks two workers and only waits on them; each worker
runs four request threads, every request ~50 ms of pure-Python work.
The master itself is idle: the contention is in the workers. Expected
finding with `gilprobe -p MASTER --subprocesses`: S2 in 2 of 2 workers."""
import os
import signal
import sys
import threading
import time

from _common import args, name_thread, ready


def handle_request(ms=50):
    """A request's worth of pure-Python work: ms of wall time."""
    end = time.perf_counter() + ms / 1000.0
    n = 0
    while time.perf_counter() < end:
        for i in range(200):
            n += i * i % 7
    return n


def request_thread(i):
    name_thread("gthread-%d" % i)
    while True:
        handle_request()


def worker(seconds):
    for i in range(4):
        threading.Thread(target=request_thread, args=(i,), daemon=True).start()
    time.sleep(seconds)
    os._exit(0)


if __name__ == "__main__":
    a = args()
    workers = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            worker(a.seconds)
        workers.append(pid)
    time.sleep(0.5)
    ready(workers=workers)
    try:
        for _ in workers:
            os.wait()  # the master only supervises
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    sys.exit(0)
