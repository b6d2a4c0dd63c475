"""Negative control: one CPU-bound thread (nobody else wants the GIL). No
finding at warning level or above."""
import threading
import time

from _common import args, ready, run_for


def compute():
    x = 0
    while True:
        x = (x + 1) % 1000


if __name__ == "__main__":
    a = args()
    threading.Thread(target=compute, daemon=True).start()
    time.sleep(0.3)
    ready()
    run_for(a.seconds)
