"""Threads that come and go, for checking the exact GIL timings against
the sampled ones where acquisitions and releases take unusual paths.

Usage: gil_churn.py MODE
  churn    every 65 ms, five new threads each burn 3 ms of CPU, then exit;
           the main thread starts and joins them (a thread's first take of
           the GIL and its last release happen in thread start-up and
           teardown)
  fork     a thread burns 5 ms of CPU then sleeps 5 ms, over and over, while
           the main thread forks a child every 100 ms (it exits at once)
  exit     every 50 ms a new thread burns 20 ms of CPU and exits: it ends
           holding the GIL and gives it up only in its teardown
Durations are CPU or wall time on the clock, never iteration counts.
Prints one JSON line once running: {"ready": true, "pid": ...}.
"""
import json
import os
import sys
import threading
import time


def burn_cpu(seconds):
    """Pure-Python work until this thread has used `seconds` of CPU."""
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += 1


def every(period, action):
    """Calls action() at the start of each period, forever."""
    next_at = time.perf_counter()
    while True:
        action()
        next_at += period
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.perf_counter()


def churn():
    threads = [threading.Thread(target=burn_cpu, args=(0.003,)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def duty_cycle():
    while True:
        burn_cpu(0.005)
        time.sleep(0.005)


def fork_one():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def main():
    mode = sys.argv[1]
    if mode == "churn":
        work = lambda: every(0.065, churn)  # noqa: E731
    elif mode == "fork":
        threading.Thread(target=duty_cycle, daemon=True).start()
        work = lambda: every(0.100, fork_one)  # noqa: E731
    elif mode == "exit":
        work = lambda: every(0.050, lambda: threading.Thread(  # noqa: E731
            target=burn_cpu, args=(0.020,), daemon=True).start())
    else:
        sys.exit("unknown mode " + mode)
    threading.Thread(target=work, daemon=True).start()
    time.sleep(0.5)
    print(json.dumps({"ready": True, "pid": os.getpid(),
                      "version": "%d.%d.%d" % sys.version_info[:3]}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
