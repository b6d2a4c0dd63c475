"""Workloads for GIL blame (issue 19): whose holds a thread's GIL wait is
spent behind, victims against aggressors, and the convoy effect.

Usage: blame.py MODE [--switch-interval S] [--rate-file PATH] [--no-hog]
  victim   a loopback TCP request/reply pair: `client` sends a small
           request, waits for the reply, sleeps ~5 ms, again; the server
           thread `quote-desk` recv()s it, does ~0.2 ms of Python work and
           replies. Beside them 4 CPU-bound threads `crunch-0..3`, each
           alternating between crunch_regex and crunch_score (~20 ms of
           wall time in one, then the other). After each recv the server
           waits for the GIL the crunch threads hold: it is their victim.
  convoy   CPython issue 7946: `io-pump` recv()s small messages from a
           socketpair that a feeder *process* (its own GIL) writes to,
           the next one ~1 ms after the last was read (see FEEDER), next
           to one CPU-bound `cpu-hog`. Each recv drops the GIL, the hog takes
           it, and taking it back costs about one switch interval: the recvs
           run at ~1/interval a second instead of ~900. --no-hog leaves
           the hog out (the uncontended rate). --rate-file PATH: every
           0.25 s a line {"t": time.monotonic(), "recvs": N} is appended
           there (flushed), N the recvs so far.
  cpupool  4 CPU-bound threads `worker-0..3` in pure-Python loops and
           nothing else: a pool that contends, with no victim.
Everything is sized by the clock, never by iteration counts.
Prints one JSON line {"ready": true, "pid": ..., tids...} once all runs.
"""
import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time

LIBC = ctypes.CDLL(None)
tids = {}
SLICE_S = 0.020   # a crunch thread's time in one function before the other
WORK_S = 0.0002   # the server's Python work per request
PAUSE_S = 0.005   # the client's pause between requests
MSG = 64          # bytes per request, reply and convoy message


def register(name):
    """The OS name (prctl PR_SET_NAME) beside the Python one; the TID."""
    LIBC.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)
    tids[name] = threading.get_native_id()


def start(name, target, *args):
    threading.Thread(target=target, args=(name,) + args, name=name, daemon=True).start()


# --- victim ---------------------------------------------------------------

def crunch_regex():
    """~20 ms of pure-Python work, the loop in this function's own body."""
    end = time.perf_counter() + SLICE_S
    n = 0
    while time.perf_counter() < end:  # MARK:crunch_regex
        for i in range(100):
            n = (n * 31 + i) & 0xFFFF
    return n


def crunch_score():
    """The same, under another name (the blame names the holder's function)."""
    end = time.perf_counter() + SLICE_S
    s = 0
    while time.perf_counter() < end:  # MARK:crunch_score
        for i in range(100):
            s = (s + i * i) % 1000003
    return s


def cruncher(name):
    register(name)
    while True:
        crunch_regex()
        crunch_score()


def quote_desk(name, listener):
    register(name)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        req = conn.recv(MSG)  # MARK:server_recv
        if not req:
            return
        end = time.perf_counter() + WORK_S
        x = 0
        while time.perf_counter() < end:  # MARK:server_work
            x += 1
        conn.sendall(b"q" * MSG)


def client(name, address):
    register(name)
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        sock.sendall(b"r" * MSG)
        got = 0
        while got < MSG:
            data = sock.recv(MSG - got)  # MARK:client_recv
            if not data:
                return
            got += len(data)
        time.sleep(PAUSE_S)


def victim():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    start("quote-desk", quote_desk, listener)
    start("client", client, listener.getsockname())
    for i in range(4):
        start("crunch-%d" % i, cruncher)
    return 6, lambda: {"victim_tid": tids["quote-desk"], "client_tid": tids["client"],
                       "crunch_tids": [tids["crunch-%d" % i] for i in range(4)]}


# --- convoy ---------------------------------------------------------------

# The feeder process. It does not keep the socket full: with a message
# always queued, recv() returns within microseconds, before the woken hog
# reaches the GIL, and io-pump takes it back, often for seconds on end
# (measured beside the hog: 27,000-159,000 recvs/s on Debian's 3.11;
# ~200/s with seconds at 7,000-78,000 on pyenv's). It writes the next
# message ~1 ms (a sleep, no CPU) after the last one was read (SIOCOUTQ,
# its bytes the reader has not taken, is 0), so each recv blocks about
# 1 ms: time enough for the hog, woken by the release, to be scheduled and
# take the GIL even when the other CPU is busy (with 0.2 ms, a test suite's
# load beside it let io-pump take the GIL straight back a third of the
# time). Then one recv per switch interval plus that pause, ~165/s at
# 5 ms; alone, io-pump reads ~900 a second (the pause).
FEEDER = """
import fcntl, os, socket, struct, sys, time
s = socket.socket(fileno=int(sys.argv[1]))
msg = b"m" * %d
outq = bytearray(4)
while True:
    time.sleep(0.001)
    fcntl.ioctl(s.fileno(), 0x5411, outq)  # SIOCOUTQ
    if struct.unpack("i", outq)[0] == 0:
        try:
            s.sendall(msg)
        except OSError:  # the workload is gone
            os._exit(0)
""" % MSG

recvs = 0


def io_pump(name, sock):
    global recvs
    register(name)
    while True:
        sock.recv(MSG)  # MARK:pump_recv
        recvs += 1


def hog(name):
    register(name)
    n = 0
    while True:
        n += 1  # MARK:hog


def rate_writer(path):
    """Runs in the main thread: every 0.25 s a line with the time and the
    recvs so far, so that a test can take the count at any two instants
    (interpolated) and the rate over exactly the span gilprobe sampled."""
    f = open(path, "a") if path else None
    while True:
        if f:
            f.write(json.dumps({"t": time.monotonic(), "recvs": recvs}) + "\n")
            f.flush()
        time.sleep(0.25)


def convoy(no_hog):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    # The feeder: another process (its own GIL), started before any thread.
    feeder = subprocess.Popen([sys.executable, "-c", FEEDER, str(theirs.fileno())],
                              pass_fds=[theirs.fileno()])
    theirs.close()
    start("io-pump", io_pump, ours)
    expect = 1
    if not no_hog:
        start("cpu-hog", hog)
        expect = 2

    def info():
        out = {"io_pump_tid": tids["io-pump"], "feeder_pid": feeder.pid}
        if not no_hog:
            out["cpu_hog_tid"] = tids["cpu-hog"]
        return out
    return expect, info


# --- cpupool --------------------------------------------------------------

def worker(name):
    register(name)
    n = 0
    while True:
        n += 1  # MARK:worker


def cpupool():
    for i in range(4):
        start("worker-%d" % i, worker)
    return 4, lambda: {"worker_tids": [tids["worker-%d" % i] for i in range(4)]}


def option(name, default=None):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def main():
    mode = sys.argv[1]
    if option("--switch-interval"):
        sys.setswitchinterval(float(option("--switch-interval")))
    if mode == "victim":
        expect, info = victim()
    elif mode == "convoy":
        expect, info = convoy("--no-hog" in sys.argv)
    elif mode == "cpupool":
        expect, info = cpupool()
    else:
        sys.exit("unknown mode " + mode)
    while len(tids) < expect:
        time.sleep(0.01)
    time.sleep(0.3)
    ready = {"ready": True, "pid": os.getpid(), "tids": dict(tids),
             "version": "%d.%d.%d" % sys.version_info[:3]}
    ready.update(info())
    print(json.dumps(ready), flush=True)
    if mode == "convoy":
        rate_writer(option("--rate-file"))
    while True:
        time.sleep(3600)  # MARK:main


if __name__ == "__main__":
    main()
