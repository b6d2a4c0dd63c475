"""eBPF overhead on the target (`make bench`): wall time per unit of
CPU-bound work (3 s of it, sized by time: bench/cpu_work.py) with `gilprobe -p` attached (exact GIL timings on) versus not, as
alternating A/B pairs, on a high-hand-off workload (8 threads, switch
interval 0.5 ms) and on the 4-thread one; with the GIL events per second
the probes saw. Usage: bench_bpf.py GILPROBE [PAIRS]"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_sampler import python_312  # noqa: E402


def run_once(python, gilprobe, threads, interval, seconds, probe, extra=(), doc_out=None,
             work=None):
    """work: the workload's argv after the interpreter (default
    cpu_work.py SECONDS THREADS INTERVAL); it speaks cpu_work.py's protocol."""
    argv = work or [os.path.join(HERE, "cpu_work.py"), str(seconds), str(threads), str(interval)]
    w = subprocess.Popen([python] + argv,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid = int(w.stdout.readline())
    p = None
    if probe:
        p = subprocess.Popen([gilprobe, "-p", str(pid), "-d", "600", "-r", "100", "--json"]
                             + list(extra),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.5)  # probes attached before the work starts
    w.stdin.write("go\n")
    w.stdin.flush()
    elapsed = float(w.stdout.readline())
    w.wait()
    events = None
    if p:
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
        doc = json.loads(out)
        if doc_out is not None:
            doc_out.append(doc)
        x = doc.get("gil_exact")
        if x:
            events = x["acquisitions"] / x["window_s"]
    return elapsed, events


def main():
    gilprobe = os.path.abspath(sys.argv[1])
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    python = python_312()
    print("eBPF exact GIL timing: target slowdown, %d alternating A/B pairs (%s)" % (pairs, python))
    print("%-34s %16s %13s %8s %16s %14s" % ("workload", "without ns/unit", "with ns/unit", "ratio", "range",
                                             "GIL events/s"))
    for label, threads, interval, seconds in (
            ("8 threads, switch interval 0.5 ms", 8, 0.0005, 3.0),
            ("4 threads, switch interval 5 ms", 4, 0.005, 3.0)):
        ratios, base, probed, events = [], [], [], []
        for i in range(pairs):
            order = (False, True) if i % 2 == 0 else (True, False)
            result = {}
            for probe in order:
                result[probe] = run_once(python, gilprobe, threads, interval, seconds, probe)
            base.append(result[False][0])
            probed.append(result[True][0])
            ratios.append(result[True][0] / result[False][0])
            if result[True][1]:
                events.append(result[True][1])
        print("%-34s %16.2f %13.2f %8.3f %7.3f - %-6.3f %14.0f" % (
            label, statistics.median(base), statistics.median(probed), statistics.median(ratios),
            min(ratios), max(ratios), statistics.median(events) if events else float("nan")))


if __name__ == "__main__":
    main()
