"""The exact GIL blame's cost (issue 19), `make bench`: the target's wall
time per unit of CPU-bound work (bench/cpu_work.py, 3 s sized by time)
under `gilprobe -p` with exact GIL timing, blame on (the default) against
`--no-blame`, as alternating A/B pairs; with the holds the kernel recorded
for it a second (each one a ring write and a read of the holder's top
frame; each wait then walks the ring back over the holds it overlapped).
The third workload (bench/cpu_work.py's `cycles`: two threads releasing
and re-taking the GIL as fast as they can) is the worst case: its units are
GIL cycles, so the difference is the cost per cycle.
Usage: bench_blame.py GILPROBE [PAIRS]"""
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_bpf import run_once  # noqa: E402
from bench_sampler import python_312  # noqa: E402


def main():
    gilprobe = os.path.abspath(sys.argv[1])
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    python = python_312()
    print("exact GIL blame: target slowdown, blame on vs --no-blame, %d alternating A/B pairs (%s)"
          % (pairs, python))
    print("%-34s %15s %13s %8s %16s %16s" % ("workload", "no-blame ns/u", "blame ns/u", "ratio",
                                             "range", "holds recorded/s"))
    cycles = [os.path.join(HERE, "cpu_work.py"), "3", "2", "0.005", "cycles"]
    for label, threads, interval, work in (
            ("8 threads, switch interval 0.5 ms", 8, 0.0005, None),
            ("4 threads, switch interval 5 ms", 4, 0.005, None),
            ("2 threads in time.sleep(0) loops", 2, 0.005, cycles)):
        ratios, off, on, holds = [], [], [], []
        for i in range(pairs):
            order = (False, True) if i % 2 == 0 else (True, False)
            result = {}
            for blame in order:
                docs = []
                result[blame] = run_once(python, gilprobe, threads, interval, 3.0, True,
                                         () if blame else ("--no-blame",), docs, work)[0]
                x = docs[0].get("gil_exact") if docs else None
                if blame and x and x.get("blame"):
                    holds.append(x["blame"]["holds_recorded_per_s"])
            off.append(result[False])
            on.append(result[True])
            ratios.append(result[True] / result[False])
        hz = statistics.median(holds) if holds else float("nan")
        print("%-34s %15.2f %13.2f %8.3f %7.3f - %-6.3f %16.0f" % (
            label, statistics.median(off), statistics.median(on), statistics.median(ratios),
            min(ratios), max(ratios), hz))
        if work:
            # each unit is one release/re-take cycle: the difference is the
            # blame's cost per cycle, in the target (the probes run there)
            print("%-34s %+.0f ns per GIL cycle (median of the pairs' differences)" % (
                "", statistics.median([b - a for a, b in zip(off, on)])))


if __name__ == "__main__":
    main()
