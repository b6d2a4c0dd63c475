"""--native benchmarks (`make bench`).

1. Pause per native sample per thread, warm caches: `gilprobe -p --native`
   (default 100 Hz) on 5 threads blocked at known places (lock3: a holder,
   3 lock waiters, the main thread), median/p99/worst of the per-thread
   stops as gilprobe reports them (stop request to resume, which includes
   waiting for the thread to reach the stop) and of the stopped-and-
   unwinding part alone. The first sample of each thread (cold caches) is
   in there too; the worst is printed separately.
2. Target slowdown at the default native rate: wall time per unit of work
   of a CPU-bound 4-thread workload running 3 s (sized by time) with `gilprobe -p --native` attached versus
   without, as alternating A/B pairs; the median ratio with its range.
Usage: bench_native.py GILPROBE [PAIRS]"""
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import bench_sampler  # noqa: E402
from bench_sampler import python_312  # noqa: E402


def pauses(python, gilprobe, seconds=5):
    w = subprocess.Popen([python, os.path.join(HERE, "..", "tests", "workloads", "contention.py"),
                          "lock3"], stdout=subprocess.PIPE, text=True)
    w.stdout.readline()
    try:
        out = subprocess.run([gilprobe, "-p", str(w.pid), "--native", "--no-bpf", "-d",
                              str(seconds), "--json"], capture_output=True, text=True,
                             check=True).stdout
    finally:
        w.kill()
        w.wait()
    n = json.loads(out)["sampler"]["native"]
    print("\n1. Pause per native sample per thread (5 blocked threads, 100 Hz, %d s; %d stops)"
          % (seconds, n["thread_stops"]))
    print("   stop request -> resumed:   median %6.0f us  p99 %6.0f us  worst %6.0f us"
          % (n["pause_p50_us"], n["pause_p99_us"], n["pause_max_us"]))
    print("   stopped+unwinding only:    median %6.0f us  p99 %6.0f us  worst %6.0f us"
          % (n["stopped_p50_us"], n["stopped_p99_us"], n["stopped_max_us"]))
    print("   worst sample (all threads): %.0f us; in all %.1f ms over %d s"
          % (n["sample_pause_max_us"], n["pause_total_ms"], seconds))


def timed_run(python, gilprobe, native):
    return bench_sampler.timed_run(python, gilprobe, ["--native", "--no-bpf"] if native else None)[0]


def slowdown(python, gilprobe, pairs):
    ratios = []
    for i in range(pairs):
        # Alternate which one goes first, so drift hits both alike.
        if i % 2:
            b = timed_run(python, gilprobe, True)
            a = timed_run(python, gilprobe, False)
        else:
            a = timed_run(python, gilprobe, False)
            b = timed_run(python, gilprobe, True)
        ratios.append(b / a)
    print("\n2. Target slowdown, 4 CPU-bound threads, --native at 100 Hz, %d A/B pairs:" % pairs)
    print("   median ratio %.3f (range %.3f-%.3f)"
          % (statistics.median(ratios), min(ratios), max(ratios)))


def main():
    gilprobe = sys.argv[1]
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    python = python_312()
    print("gilprobe --native benchmarks on %s (%d CPUs, load %.1f)"
          % (python, os.cpu_count(), os.getloadavg()[0]))
    pauses(python, gilprobe)
    slowdown(python, gilprobe, pairs)


if __name__ == "__main__":
    main()
