"""Sampler benchmarks (`make bench`).

1. Overhead on the target: wall time per unit of work of a CPU-bound
   4-thread workload that runs 3 s (sized by time, bench/cpu_work.py) with
   `gilprobe -p` attached at 100 Hz, 1 kHz, 10 kHz versus without, as
   alternating A/B pairs; the median ratio with its range.
2. The sampler's own cost: CPU time per thread-sample with 8 and 64 idle
   threads (each 20 frames deep) at several rates, and the rate it sustains.
Usage: bench_sampler.py GILPROBE [PAIRS [RATE,RATE,...]]
(a list of rates runs only the overhead part, at those rates: more pairs at
one rate narrow its median, e.g. `bench_sampler.py ./gilprobe 25 1000`)."""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from interpreters import interpreters  # noqa: E402


def python_312():
    found, _ = interpreters()
    return dict(found).get("pyenv-3.12") or found[0][1]


def timed_run(python, gilprobe, probe_args):
    """Wall time per unit of the workload's work (ns), with `gilprobe -p PID
    PROBE_ARGS` attached (or not, for None), and the sampler's CPU per
    thread-sample."""
    w = subprocess.Popen([python, os.path.join(HERE, "cpu_work.py")], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    pid = int(w.stdout.readline())
    probe = None
    if probe_args is not None:
        probe = subprocess.Popen([gilprobe, "-p", str(pid), "-d", "600", "--json"] + probe_args,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.3)  # attached and sampling before the work starts
    w.stdin.write("go\n")
    w.stdin.flush()
    elapsed = float(w.stdout.readline())
    w.wait()
    cost = None
    if probe:
        probe.send_signal(signal.SIGINT)
        out, _ = probe.communicate(timeout=30)
        try:
            doc = json.loads(out)
            cost = doc["sampler"]["us_per_thread_sample"]
        except ValueError:
            pass
    return elapsed, cost


def overhead(python, gilprobe, pairs, rates=(100, 1000, 10000)):
    print("\n1. Target slowdown: 4 CPU-bound threads for 3 s, wall time per unit of work; "
          "%d alternating A/B pairs per rate" % pairs)
    print("%-8s %12s %12s %10s %22s %16s" % ("rate", "base ns/unit", "with ns/unit", "ratio",
                                             "ratio range", "us/thread-sample"))
    for rate in rates:
        ratios, base, probed, costs = [], [], [], []
        for i in range(pairs):
            # Alternate the order so drift on the shared machine cancels out.
            if i % 2 == 0:
                a, _ = timed_run(python, gilprobe, None)
                b, c = timed_run(python, gilprobe, ["-r", str(rate)])
            else:
                b, c = timed_run(python, gilprobe, ["-r", str(rate)])
                a, _ = timed_run(python, gilprobe, None)
            base.append(a)
            probed.append(b)
            ratios.append(b / a)
            if c:
                costs.append(c)
        print("%-8s %12.2f %12.2f %10.3f %10.3f - %-9.3f %16.2f" % (
            "%d Hz" % rate, statistics.median(base), statistics.median(probed),
            statistics.median(ratios), min(ratios), max(ratios),
            statistics.median(costs) if costs else float("nan")))


def wakeup_floor_us(rate):
    """CPU microseconds one bare periodic wake-up costs at `rate` here."""
    floor = os.path.join(HERE, "..", "build", "sleep_floor")
    out = subprocess.run([floor, str(rate), "1"], capture_output=True, text=True, check=True)
    return float(out.stdout)


def own_cost(python, gilprobe):
    print("\n2. Sampler's own cost (idle threads, 20 frames deep, 2 s per row)")
    print("   wake-up = CPU a bare program spends just sleeping and waking at that rate")
    print("   (measured alongside, /proc/self/schedstat); work = the rest, per thread-sample")
    print("%-8s %-8s %9s %9s %8s %10s %12s %12s %12s" % (
        "threads", "reads", "requested", "achieved", "CPU %", "wake-up %", "us/thr-smp",
        "work us/t-s", "syscalls/smp"))
    for nthreads in (8, 64):
        target = subprocess.Popen([python, os.path.join(HERE, "deep_threads.py"),
                                   str(nthreads), "20"], stdout=subprocess.PIPE, text=True)
        pid = json.loads(target.stdout.readline())["pid"]
        try:
            for reads, flags in (("bpf", []), ("proc", ["--no-bpf"])):
                for rate in (1000, 10000, 100000):
                    r = subprocess.run([gilprobe, "-p", str(pid), "-d", "2", "-r", str(rate),
                                        "--json"] + flags, capture_output=True, text=True)
                    doc = json.loads(r.stdout)
                    s, c = doc["samples"], doc["sampler"]
                    taken = max(1, s["taken"])
                    wake = wakeup_floor_us(min(rate, s["rate_hz"]))
                    work = (c["cpu_s"] * 1e6 - wake * taken) / max(1, c["thread_samples"])
                    print("%-8d %-8s %9d %9.0f %7.1f%% %9.1f%% %12.2f %12.2f %12.2f" % (
                        nthreads, reads, rate, s["rate_hz"],
                        100 * c["cpu_s"] / doc["run"]["duration_s"],
                        100 * wake * taken / 1e6 / doc["run"]["duration_s"],
                        c["us_per_thread_sample"], work, c["read_syscalls"] / taken))
        finally:
            target.kill()
            target.wait()


def main():
    gilprobe = os.path.abspath(sys.argv[1])
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    python = python_312()
    print("gilprobe sampler benchmarks, target %s" % python)
    if len(sys.argv) > 3:
        overhead(python, gilprobe, pairs, [int(r) for r in sys.argv[3].split(",")])
        return
    own_cost(python, gilprobe)
    overhead(python, gilprobe, pairs)


if __name__ == "__main__":
    main()
