"""Workloads with known GIL/lock behaviour for the sampler's accuracy tests.

Usage: contention.py MODE [--switch-interval S]
  cpu4   4 threads in a pure-Python loop: the GIL is always held, each
         thread holds it ~1/4 of the time and waits ~3/4
  idle4  2 threads sleeping in short naps, 2 echoing over loopback TCP:
         the GIL is almost never held, nobody waits for it
  lock3  one thread holds a threading.Lock while it sleeps, 3 threads
         block on that lock at the marked line
  lock15 the same with 15 waiting threads
  nogil  one thread in hashlib.pbkdf2_hmac (C, GIL released) next to a
         pure-Python loop
  burst  one thread alone: ~10 ms of pure-Python work holding the GIL,
         then ~40 ms asleep, over and over
Prints one JSON line with the threads' TIDs once everything runs.
"""
import ctypes
import hashlib
import json
import os
import socket
import sys
import threading
import time

LIBC = ctypes.CDLL(None)
tids = {}


def register(name):
    LIBC.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME
    tids[name] = threading.get_native_id()


def spin(name):
    register(name)
    n = 0
    while True:
        n += 1  # MARK:spin


def napper(name):
    register(name)
    while True:
        time.sleep(0.005)  # MARK:nap


def echo_client(name, sock):
    register(name)
    while True:
        sock.sendall(b"x" * 64)
        sock.recv(64)  # MARK:echo_recv
        time.sleep(0.001)


def echo_server(conn):
    while True:
        data = conn.recv(64)
        if not data:
            return
        conn.sendall(data)


lock = threading.Lock()
held = threading.Event()


def holder(name):
    register(name)
    with lock:
        held.set()
        time.sleep(100000)  # MARK:hold


def lock_waiter(name):
    register(name)
    held.wait()
    with lock:  # MARK:lock_wait
        pass


def hasher(name):
    register(name)
    while True:
        hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 200000)  # MARK:pbkdf2


def burster(name):
    register(name)
    while True:
        end = time.perf_counter() + 0.010
        while time.perf_counter() < end:  # MARK:burst
            pass
        time.sleep(0.040)


def start(target, *args):
    threading.Thread(target=target, args=args, daemon=True).start()


def main():
    mode = sys.argv[1]
    if "--switch-interval" in sys.argv:
        sys.setswitchinterval(float(sys.argv[sys.argv.index("--switch-interval") + 1]))
    expect = 0
    if mode == "cpu4":
        for i in range(4):
            start(spin, "spin-%d" % i)
        expect = 4
    elif mode == "idle4":
        for i in range(2):
            start(napper, "nap-%d" % i)
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        for i in range(2):
            client = socket.create_connection(server.getsockname())
            conn, _ = server.accept()
            threading.Thread(target=echo_server, args=(conn,), daemon=True).start()
            start(echo_client, "echo-%d" % i, client)
        expect = 4
    elif mode in ("lock3", "lock15"):
        waiters = int(mode[4:])
        start(holder, "holder")
        for i in range(waiters):
            start(lock_waiter, "waiter-%d" % i)
        expect = waiters + 1
    elif mode == "nogil":
        start(hasher, "hasher")
        start(spin, "spin")
        expect = 2
    elif mode == "burst":
        start(burster, "burster")
        expect = 1
    else:
        sys.exit("unknown mode " + mode)
    while len(tids) < expect:
        time.sleep(0.01)
    time.sleep(0.3)
    print(json.dumps({"ready": True, "pid": os.getpid(), "tids": tids,
                      "version": "%d.%d.%d" % sys.version_info[:3]}), flush=True)
    while True:
        time.sleep(3600)  # MARK:main


if __name__ == "__main__":
    main()
