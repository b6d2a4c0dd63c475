"""Threads that wait for work or for a signal, none contending for a
critical section: the most ordinary Python service at rest.

Usage: idle_pools.py MODE
  idle     an idle ThreadPoolExecutor(8); 4 consumers in queue.Queue.get();
           2 in a C SimpleQueue.get() called from their own code; 3 in
           Event.wait(); 2 in Condition.wait(); 3 at a Barrier that never
           fills; 2 in Semaphore(0).acquire(); 1 in BoundedSemaphore
           acquire; 1 in Thread.join() of a thread that never ends
  convoy   6 threads take turns on one threading.Lock around a ~2 ms write
           (a sleep: a real critical section, lock contention; with pure-
           Python work inside, 3.8-3.12 threads that got the lock then
           queue for the GIL, which is S2's business)
  condcs   6 threads enter one Condition (`with cond:`) for a ~2 ms write
           each (a Condition used as a critical section: contention)
  busy     a ThreadPoolExecutor(4) whose tasks each wait 20 ms (I/O-like),
           fed so that a dozen tasks always wait in its queue: every worker
           occupied, never waiting for work
Prints one JSON line: {"ready": true, "pid": ..., "tids": {name: tid}}; the
names say what each thread waits in.
"""
import concurrent.futures
import ctypes
import json
import os
import queue
import sys
import threading
import time

LIBC = ctypes.CDLL(None)
tids = {}
keep = []  # an executor that is garbage-collected tells its workers to exit


def register(name):
    LIBC.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME
    tids[name] = threading.get_native_id()


def start(name, target, *args):
    def run():
        register(name)
        target(*args)
    threading.Thread(target=run, daemon=True).start()


def idle():
    pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="pool")
    keep.append(pool)
    # Eight tasks at once make the executor start its eight workers.
    gate = threading.Barrier(9)
    futures = [pool.submit(lambda: (register("pool-%d" % threading.get_native_id()),
                                    gate.wait())) for _ in range(8)]
    gate.wait()
    for f in futures:
        f.result()
    q = queue.Queue()
    for i in range(4):
        start("queue-%d" % i, q.get)
    sq = queue.SimpleQueue()
    for i in range(2):
        start("simpleq-%d" % i, lambda: sq.get())
    event = threading.Event()
    for i in range(3):
        start("event-%d" % i, event.wait)
    cond = threading.Condition()

    def cond_wait():
        with cond:
            cond.wait()
    for i in range(2):
        start("cond-%d" % i, cond_wait)
    barrier = threading.Barrier(4)
    for i in range(3):
        start("barrier-%d" % i, barrier.wait)
    sem = threading.Semaphore(0)
    for i in range(2):
        start("sem-%d" % i, sem.acquire)
    bsem = threading.BoundedSemaphore(1)
    bsem.acquire()
    start("bsem-0", bsem.acquire)
    forever = threading.Thread(target=event.wait, daemon=True)
    forever.start()
    start("join-0", forever.join)
    return 8 + 4 + 2 + 3 + 2 + 3 + 2 + 1 + 1


def critical_sections(enter, inside):
    for i in range(6):
        def worker(i=i):
            while True:
                with enter:  # MARK:enter
                    inside(0.002)
                time.sleep(0.0005)
        start("cs-%d" % i, worker)
    return 6


def busy():
    pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="busy")
    keep.append(pool)

    def task():
        tids.setdefault("busy-%d" % threading.get_native_id(), threading.get_native_id())
        time.sleep(0.020)

    def feed():
        pending = set()
        while True:
            pending = {f for f in pending if not f.done()}
            while len(pending) < 16:
                pending.add(pool.submit(task))
            time.sleep(0.005)
    threading.Thread(target=feed, daemon=True).start()
    return 4


def main():
    mode = sys.argv[1]
    if mode == "idle":
        expect = idle()
    elif mode == "convoy":
        expect = critical_sections(threading.Lock(), time.sleep)
    elif mode == "condcs":
        expect = critical_sections(threading.Condition(), time.sleep)
    elif mode == "busy":
        expect = busy()
    else:
        sys.exit("unknown mode " + mode)
    while len(tids) < expect:
        time.sleep(0.01)
    time.sleep(0.5)
    print(json.dumps({"ready": True, "pid": os.getpid(), "tids": tids,
                      "version": "%d.%d.%d" % sys.version_info[:3]}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
