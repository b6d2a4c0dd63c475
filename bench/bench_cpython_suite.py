"""CPython's own test suite as a long, hostile workload (`make bench`): the
threading/asyncio/concurrent.futures list below (~4 min on Debian's 3.11,
hundreds of threads started and exited) under `gilprobe run`, in the
futex fallback Debian's stripped 3.11 needs. Prints whether CPython's
tests passed, gilprobe's exit, the threads seen, and the exact GIL
figures against the sampled ones (and the run's own check of them).
Usage: bench_cpython_suite.py GILPROBE [PYTHON]"""
import json
import os
import subprocess
import sys
import tempfile
import time

TESTS = ["test_threading", "test_thread", "test_queue", "test_threading_local",
         "test_asyncio.test_tasks", "test_asyncio.test_locks", "test_asyncio.test_queues",
         "test_concurrent_futures", "test_signal", "test_sys", "test_gc", "test_weakref"]


def main():
    gilprobe = os.path.abspath(sys.argv[1])
    python = sys.argv[2] if len(sys.argv) > 2 else "/usr/bin/python3.11"
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        t0 = time.monotonic()
        r = subprocess.run([gilprobe, "run", "--json", "-o", report, "--", python, "-m", "test",
                            "-q"] + TESTS, capture_output=True, text=True, cwd=tmp)
        took = time.monotonic() - t0
        doc = json.load(open(report))
    x = doc.get("gil_exact") or {}
    check = x.get("check") or {}
    print("CPython's test suite under gilprobe run (%s; %d test modules)" % (python, len(TESTS)))
    print("  wall time             %.0f s" % took)
    print("  exit code             %d (%s)" % (
        r.returncode, "tests passed" if r.returncode == 0 else "tests FAILED or gilprobe error"))
    print("  Python threads        %d created, %d exited" % (
        doc["run"]["python_threads"]["created"], doc["run"]["python_threads"]["exited"]))
    print("  GIL held, sampled     %.1f%%" % doc["gil"]["held_pct"])
    if x:
        print("  GIL held, exact       %.1f%%  (%s)" % (x["held_pct"], x["mode"]))
        print("  check                 %s: difference %.1f points, tolerance %.1f" % (
            "consistent" if x["consistent"] else "INCONSISTENT", check.get("held_diff", 0),
            check.get("held_tolerance", 0)))
        w = check.get("furthest_thread")
        if w:
            print("  furthest thread wait  %d: %.1f%% exact vs %.1f%% sampled (tolerance %.1f)" % (
                w["tid"], w["exact_wait_pct"], w["sampled_wait_pct"], w["tolerance"]))
    else:
        print("  GIL, exact            not measured: %s" % doc.get("gil_exact_unavailable"))


if __name__ == "__main__":
    main()
