"""A process whose threads sit at known places, for `gilprobe dump` tests.

Lines the tests look for are marked with `# MARK:<name>`; the tests find
them in this file, so edits here cannot silently break the expectations.
Prints one JSON line on stdout once every thread is where it should be.
Runs on CPython 3.8+.
"""
import ctypes
import json
import os
import socket
import sys
import threading
import time

LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_NAME = 15


def set_kernel_name(name):
    LIBC.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()), 0, 0, 0)


lock = threading.Lock()
lock_taken = threading.Event()
tids = {}


def sleeper():
    set_kernel_name("gp-sleeper")
    tids["sleeper"] = threading.get_native_id()
    time.sleep(100000)  # MARK:sleep


def holder():
    set_kernel_name("gp-holder")
    tids["holder"] = threading.get_native_id()
    with lock:
        lock_taken.set()
        time.sleep(100000)  # MARK:hold


def waiter():
    set_kernel_name("gp-waiter")
    tids["waiter"] = threading.get_native_id()
    lock_taken.wait()
    lock.acquire()  # MARK:lockwait


def reader(sock):
    set_kernel_name("gp-reader")
    tids["reader"] = threading.get_native_id()
    sock.recv(1)  # MARK:recv


class Spinner:
    count = 0

    def spin(self):
        set_kernel_name("gp-spinner")
        tids["spinner"] = threading.get_native_id()
        while True: Spinner.count += 1  # MARK:spin  # noqa: E701


def thread_state(tid):
    with open("/proc/self/task/%d/stat" % tid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def main():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())
    conn, _ = server.accept()
    threads = [
        threading.Thread(target=sleeper, daemon=True),
        threading.Thread(target=holder, daemon=True),
        threading.Thread(target=waiter, daemon=True),
        threading.Thread(target=reader, args=(conn,), daemon=True),
        threading.Thread(target=Spinner().spin, daemon=True),
    ]
    for t in threads:
        t.start()
    # Ready once every blocking thread is asleep in the kernel.
    deadline = time.time() + 30
    while time.time() < deadline:
        if len(tids) == 5 and all(
            thread_state(tids[n]) == "S" for n in ("sleeper", "holder", "waiter", "reader")
        ):
            break
        time.sleep(0.01)
    time.sleep(0.2)
    # threading.Lock is a POSIX semaphore through 3.13.0: a blocked acquire
    # futex-waits on the sem_t the lock object points to (at +16).
    # From 3.14 it is a PyMutex (a byte at +16; 3 = locked, waiters
    # parked): the waiter parks elsewhere, but gilprobe names the PyMutex.
    sem = ctypes.c_void_p.from_address(id(lock) + 16).value
    if (sem or 0) < 256:
        sem = id(lock) + 16
    print(json.dumps({"ready": True, "pid": os.getpid(), "tids": tids, "lock_sem": sem,
                      "version": "%d.%d.%d" % sys.version_info[:3]}), flush=True)
    main_idle()


def main_idle():
    while True:
        time.sleep(3600)  # MARK:main


if __name__ == "__main__":
    main()
