"""A short program for `gilprobe run`: known work from its first line to
its exit, a known stdout, a chosen exit code.

Usage: run_app.py MODE [EXIT_CODE]
  early   the very first thing it does is spin in early_work() for 0.4 s
          (seen only by a profiler attached before the first instruction)
  threads 4 CPU-bound threads for ~1.5 s (GIL contention)
  child   starts a Python child that spins in child_work() for 1.5 s,
          after 0.3 s of its own
  sleep   sleeps in sleep_forever() until killed (signal handling tests)
  memory  holds 48 MiB of touched memory for 3 s (asleep: no CPU taken
          from the suite), exits
Prints "out: MODE" lines on stdout; exits with EXIT_CODE (default 0).
"""
import sys
import time


def early_work(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:  # MARK:early
        n += 1
    return n


MODE = sys.argv[1]
if MODE == "early":
    early_work(0.4)


def spin(seconds):
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:  # MARK:spin
        x += 1


def sleep_forever():
    while True:
        time.sleep(0.05)  # MARK:sleep


def main():
    import subprocess
    import threading
    print("out: %s" % MODE, flush=True)
    if MODE == "threads":
        threads = [threading.Thread(target=spin, args=(1.5,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elif MODE == "child":
        spin(0.3)
        code = "import sys; sys.path.insert(0, %r); import run_child" % sys.path[0]
        subprocess.run([sys.executable, "-c", code], check=True)
    elif MODE == "memory":
        held = [bytearray(1 << 20) for _ in range(48)]  # zero-filled: resident
        # long enough for an attach slowed by a loaded machine (1.2 s was
        # not, once, on 3.14: gilprobe's first sample came after the exit)
        time.sleep(3.0)
        del held
    elif MODE == "sleep":
        print("ready", flush=True)
        sleep_forever()
    print("out: done", flush=True)
    sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)


main()
