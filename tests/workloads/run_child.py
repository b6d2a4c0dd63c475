"""The Python child of run_app.py's `child` mode: spins for 1.5 s."""
import time


def child_work():
    end = time.monotonic() + 1.5
    x = 0
    while time.monotonic() < end:  # MARK:child
        x += 1


child_work()
