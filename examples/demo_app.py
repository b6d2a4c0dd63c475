"""A small service in trouble, for `make demo`: two CPU-bound workers fight
for the GIL, two writers queue on one lock held across a slow "DB write",
an acceptor waits for connections. Runs on CPython 3.8+.

Usage: demo_app.py [--seconds N]   (prints a ready line once all is running)
"""
import argparse
import ctypes
import os
import socket
import sys
import threading
import time

LIBC = ctypes.CDLL(None)


def name_thread(name):
    LIBC.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME


def checksum(data):
    total = 0
    for b in data:
        total = (total * 31 + b) & 0xFFFFFFFF
    return total


def cpu_worker(name):
    name_thread(name)
    data = os.urandom(4096)
    while True:
        checksum(data)


db_lock = threading.Lock()


def slow_db_write():
    time.sleep(0.05)


def writer(name):
    name_thread(name)
    while True:
        with db_lock:
            slow_db_write()


def acceptor(server):
    name_thread("acceptor")
    while True:
        conn, _ = server.accept()
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3600)
    args = parser.parse_args()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    threads = [threading.Thread(target=cpu_worker, args=("worker-%d" % i,), daemon=True)
               for i in (1, 2)]
    threads += [threading.Thread(target=writer, args=("writer-%d" % i,), daemon=True)
                for i in (1, 2)]
    threads.append(threading.Thread(target=acceptor, args=(server,), daemon=True))
    for t in threads:
        t.start()
    time.sleep(0.5)
    print("ready pid=%d" % os.getpid(), flush=True)
    time.sleep(args.seconds)


if __name__ == "__main__":
    sys.exit(main())
