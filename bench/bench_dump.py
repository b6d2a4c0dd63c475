"""`gilprobe dump` speed: 100 threads x 50 frames, median of 10 runs, per
interpreter; also the bytes and syscalls one dump reads (--stats).
Usage: bench_dump.py GILPROBE [RUNS]"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from interpreters import interpreters  # noqa: E402

THREADS, DEPTH = 100, 50
GOAL_MS = 50.0


def start_target(python):
    p = subprocess.Popen([python, os.path.join(HERE, "deep_threads.py"), str(THREADS), str(DEPTH)],
                         stdout=subprocess.PIPE, text=True)
    json.loads(p.stdout.readline())
    return p


def main():
    gilprobe = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    found, missing = interpreters()
    if missing:
        print("missing interpreters: " + "; ".join(missing))
    print("gilprobe dump: %d threads x %d frames, median of %d runs (goal < %.0f ms)"
          % (THREADS, DEPTH, runs, GOAL_MS))
    print("%-12s %9s %9s %9s %10s %9s" % ("python", "median", "min", "max", "bytes", "syscalls"))
    worst = 0.0
    for label, python in found:
        target = start_target(python)
        try:
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                r = subprocess.run([gilprobe, "dump", "-p", str(target.pid), "--json"],
                                   capture_output=True, text=True)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.returncode == 0, r.stderr
            doc = json.loads(r.stdout)
            assert doc["python_threads"] == THREADS
            stats = subprocess.run([gilprobe, "dump", "-p", str(target.pid), "--stats"],
                                   capture_output=True, text=True).stderr
            fields = dict(kv.split("=") for kv in stats.split() if "=" in kv)
            med = statistics.median(times)
            worst = max(worst, med)
            print("%-12s %7.1fms %7.1fms %7.1fms %10s %9s" % (label, med, min(times), max(times),
                                                           fields.get("bytes", "?"),
                                                           fields.get("syscalls", "?")))
        finally:
            target.kill()
            target.wait()
    print("worst median %.1f ms: %s" % (worst, "within goal" if worst < GOAL_MS else "OVER GOAL"))


if __name__ == "__main__":
    main()
