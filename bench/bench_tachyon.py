"""gilprobe beside CPython 3.15's own sampling profiler ("Tachyon",
`python3.15 -m profiling.sampling`) on the same 3.15 targets, in one run
(issue 16). `make bench` runs it; Usage: bench_tachyon.py GILPROBE [REPEATS]

1. CPU per thread-sample at 1 kHz, 8 and 64 idle threads 20 frames deep:
   the marginal CPU (a 5 s run minus a 1 s run, so interpreter start-up and
   attach are left out) over the marginal thread-samples, median of REPEATS.
2. The share of samples in which each thread holds the GIL: two threads
   spinning (each ~50%) and one that bursts 10 ms per 50 ms (~20%), 3 s:
   Tachyon's `--mode gil -a` (samples per thread / samples taken), our
   sampled per-thread `gil_held_pct` and our exact eBPF `held_pct`.
3. `dump` of 100 threads x 50 frames: wall time of the whole command,
   median of REPEATS, ours against `profiling.sampling dump -a`.

Tachyon runs inside the chroot (it attaches only to its own minor version);
it opens the target's files by the paths in /proc/PID/maps, which are host
paths, so the chroot gets a link from that path to its own root."""
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from interpreters import CHROOT, interpreters  # noqa: E402

RATE = 1000


def python315():
    found, _ = interpreters()
    return dict(found)["unstable-3.15"]


def chroot_sees_host_paths():
    """/proc/PID/maps of a chroot process names host paths
    (/var/cache/gilprobe/unstable-chroot/usr/bin/python3.15): inside the
    chroot that path must lead back to its root."""
    link = CHROOT + CHROOT
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("/", link)


def start(python, script, *args):
    p = subprocess.Popen([python, os.path.join(HERE, script)] + [str(a) for a in args],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    json.loads(line)
    return p


def run_cpu(cmd):
    """(user+system CPU seconds of cmd, once reaped; its stdout, stderr)."""
    before = os.times()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system -
                                                          before.children_system)
    return cpu, out, err


def ours_cost(gilprobe, pid, seconds, flags):
    cpu, out, _ = run_cpu([gilprobe, "-p", str(pid), "-d", str(seconds), "-r", str(RATE),
                           "--json"] + flags)
    doc = json.loads(out)
    return cpu, doc["samples"]["taken"] * len(doc["threads"])


def tachyon_cost(python, pid, seconds, threads):
    out_file = "/tmp/gilprobe-bench-tachyon-%d.txt" % os.getpid()
    cpu, out, err = run_cpu([python, "-m", "profiling.sampling", "attach", "-r", str(RATE),
                             "-d", str(seconds), "-a", "--collapsed", "-o", out_file, str(pid)])
    m = re.search(r"Captured (\d+) samples", out + err)
    os.unlink(out_file)
    return cpu, int(m.group(1)) * threads


def per_sample(costs):
    """Marginal µs per thread-sample: (5 s run - 1 s run)."""
    (c1, n1), (c5, n5) = costs
    return (c5 - c1) / (n5 - n1) * 1e6


def cost_part(gilprobe, python, repeats):
    print("1. CPU per thread-sample at %d Hz (marginal: 5 s run minus 1 s run), "
          "median of %d" % (RATE, repeats))
    print("   (gilprobe: its default, eBPF reads; and --no-bpf, process_vm_readv as Tachyon)")
    print("   %-8s %14s %14s %14s %8s" % ("threads", "gilprobe", "--no-bpf", "Tachyon", "ratio"))
    for n in (8, 64):
        target = start(python, "deep_threads.py", n, 20)
        try:
            ours, plain, theirs = [], [], []
            for _ in range(repeats):
                ours.append(per_sample([ours_cost(gilprobe, target.pid, s, []) for s in (1, 5)]))
                plain.append(per_sample([ours_cost(gilprobe, target.pid, s, ["--no-bpf"])
                                         for s in (1, 5)]))
                theirs.append(per_sample([tachyon_cost(python, target.pid, s, n) for s in (1, 5)]))
            o, p, t = (statistics.median(x) for x in (ours, plain, theirs))
            print("   %-8d %11.2f µs %11.2f µs %11.2f µs %7.1fx   (ranges: %.2f-%.2f, %.2f-%.2f, "
                  "%.2f-%.2f)" % (n, o, p, t, t / o, min(ours), max(ours), min(plain), max(plain),
                                 min(theirs), max(theirs)))
        finally:
            target.kill()
            target.wait()


def gil_part(gilprobe, python):
    print("\n2. Share of samples holding the GIL, per thread (3 s, %d Hz)" % RATE)
    target = start(python, "gil_mix.py")
    try:
        out_file = "/tmp/gilprobe-bench-tachyon-gil-%d.txt" % os.getpid()
        r = subprocess.run([python, "-m", "profiling.sampling", "attach", "-r", str(RATE), "-d",
                            "3", "-a", "--mode", "gil", "--collapsed", "-o", out_file,
                            str(target.pid)], capture_output=True, text=True, timeout=60)
        taken = int(re.search(r"Captured (\d+) samples", r.stdout + r.stderr).group(1))
        held = {}
        for line in open(out_file):
            stack, count = line.rsplit(" ", 1)
            tid = int(re.match(r"tid:(\d+)", stack).group(1))
            held[tid] = held.get(tid, 0) + int(count)
        os.unlink(out_file)
        r = subprocess.run([gilprobe, "-p", str(target.pid), "-d", "3", "-r", str(RATE),
                            "--json"], capture_output=True, text=True, timeout=60)
        doc = json.loads(r.stdout)
        exact = {t["tid"]: t for t in (doc["gil_exact"] or {}).get("threads", [])}
        print("   %-8s %-14s %10s %12s %12s" % ("tid", "name", "Tachyon", "ours sampled",
                                               "ours exact"))
        for t in doc["threads"]:
            if t["python_name"] == "MainThread":
                continue
            x = exact.get(t["tid"])
            print("   %-8d %-14s %9.1f%% %11.1f%% %11s" % (
                t["tid"], t["python_name"] or t["name"], 100.0 * held.get(t["tid"], 0) / taken,
                t["gil_held_pct"], "%.1f%%" % x["held_pct"] if x else "-"))
        print("   process: Tachyon %.1f%%, ours sampled %.1f%%, exact %s" % (
            100.0 * sum(held.values()) / taken, doc["gil"]["held_pct"],
            "%.1f%%" % doc["gil_exact"]["held_pct"] if doc["gil_exact"] else "-"))
    finally:
        target.kill()
        target.wait()


def dump_part(gilprobe, python, repeats):
    print("\n3. dump of 100 threads x 50 frames, wall time of the command, median of %d"
          % repeats)
    target = start(python, "deep_threads.py", 100, 50)
    try:
        def wall(cmd):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.returncode == 0, r.stderr
            return statistics.median(times), min(times), max(times)
        ours = wall([gilprobe, "dump", "-p", str(target.pid)])
        theirs = wall([python, "-m", "profiling.sampling", "dump", "-a", str(target.pid)])
        start_up = wall([python, "-c", "pass"])
        print("   gilprobe dump      %7.1f ms (%.1f-%.1f)" % ours)
        print("   Tachyon dump -a    %7.1f ms (%.1f-%.1f); python3.15 -c pass alone: %.1f ms"
              % (theirs + (start_up[0],)))
    finally:
        target.kill()
        target.wait()


def main():
    gilprobe = os.path.abspath(sys.argv[1])
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    python = python315()
    chroot_sees_host_paths()
    print("gilprobe beside CPython 3.15's profiling.sampling, same 3.15.2 targets")
    cost_part(gilprobe, python, repeats)
    gil_part(gilprobe, python)
    dump_part(gilprobe, python, repeats)


if __name__ == "__main__":
    main()
