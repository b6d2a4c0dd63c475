"""S2: eight worker threads doing pure-Python work: each holds the GIL
briefly and waits long. Expected finding: S2, culprit score_batch."""
import threading
import time

from _common import args, name_thread, ready, run_for


def score_batch(ms):
    """Scores for `ms` of wall time (pure Python: holds the GIL while it runs)."""
    end = time.perf_counter() + ms / 1000.0
    s = 0
    while time.perf_counter() < end:
        for i in range(200):
            s += i * i % 13
    return s


def worker(i):
    name_thread("worker-%d" % i)
    while True:
        score_batch(2)


if __name__ == "__main__":
    a = args()
    for i in range(8):
        threading.Thread(target=worker, args=(i,), daemon=True).start()
    time.sleep(0.3)
    ready()
    run_for(a.seconds)
