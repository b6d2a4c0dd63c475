"""`gilprobe dump --tasks` cost: a process with 1000 asyncio tasks (three
coroutines deep, asleep, in gathers of 10 awaited by 100 more tasks;
bench/many_tasks.py), per interpreter: the median wall time of
`dump --json` with and without `--tasks` (their difference is the tasks'
read: registry, chains, edges), and the bytes and syscalls that
`--tasks` adds (--stats); then what reading asyncio's timers and task
counts costs the sampler per sample (against --no-asyncio). Usage:
bench_tasks.py GILPROBE [RUNS] [TASKS]"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from interpreters import interpreters, sync_into_chroot  # noqa: E402


def start_target(python, label, ntasks):
    """many_tasks.py with ntasks tasks: the process and its pid (None,
    said, when it did not start)."""
    p = subprocess.Popen([python, os.path.join(HERE, "many_tasks.py"), str(ntasks)],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line:
        print("%-12s (target did not start)" % label)
        return p, None
    return p, json.loads(line)["pid"]


def timed(cmd, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.returncode == 0, r.stderr
    return statistics.median(times), r.stdout


def stats(gilprobe, pid, extra):
    err = subprocess.run([gilprobe, "dump", "-p", str(pid), "--stats"] + extra,
                         capture_output=True, text=True).stderr
    return dict(kv.split("=") for kv in err.split() if "=" in kv)


def main():
    gilprobe = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    ntasks = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    found, missing = interpreters()
    if missing:
        print("missing interpreters: " + "; ".join(missing))
    sync_into_chroot()
    print("gilprobe dump --tasks: %d tasks (+%d gathering, +1 running), median of %d runs"
          % (ntasks, ntasks // 10, runs))
    print("%-12s %7s %10s %10s %9s %12s %9s" % ("python", "tasks", "dump", "--tasks", "added",
                                             "bytes added", "syscalls"))
    for label, python in found:
        p, pid = start_target(python, label, ntasks)
        try:
            if not pid:
                continue
            base, _ = timed([gilprobe, "dump", "-p", str(pid), "--json"], runs)
            with_tasks, out = timed([gilprobe, "dump", "-p", str(pid), "--json", "--tasks"], runs)
            tasks = json.loads(out)["tasks"]
            s0, s1 = stats(gilprobe, pid, []), stats(gilprobe, pid, ["--tasks"])
            added_bytes = int(s1.get("bytes", 0)) - int(s0.get("bytes", 0))
            added_calls = int(s1.get("syscalls", 0)) - int(s0.get("syscalls", 0))
            count = tasks["count"] if tasks["unavailable"] is None else tasks["unavailable"][:30]
            print("%-12s %7s %8.1fms %8.1fms %7.1fms %12d %9d" % (label, count, base, with_tasks,
                                                                with_tasks - base, added_bytes,
                                                                added_calls))
        finally:
            p.kill()
            p.wait()


def sampling_cost(gilprobe, pid, extra, runs):
    """Median CPU per thread-sample and read syscalls per second of a 2 s
    sampled run, over `runs` runs."""
    us, calls = [], []
    for _ in range(runs):
        r = subprocess.run([gilprobe, "-p", str(pid), "-d", "2", "--json"] + extra,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        us.append(doc["sampler"]["us_per_thread_sample"])
        calls.append(doc["sampler"]["read_syscalls"] / doc["run"]["duration_s"])
    return statistics.median(us), statistics.median(calls)


def per_sample(gilprobe, runs, ntasks):
    """What reading asyncio costs the sampler on the same target: its loop
    stuck in one task (a stall that never ends: its 1000-timer heap read
    every 5 ms) and, every second, the task count; runs alternate with
    --no-asyncio so the machine's noise falls on both."""
    found, _ = interpreters()
    print()
    print("sampling at 1000 Hz, %d tasks (%d timers) in one stalled loop: CPU per sample and "
          "read syscalls per second, median of %d alternating runs" % (ntasks, ntasks, runs))
    print("%-12s %14s %14s %12s %12s" % ("python", "us/sample", "--no-asyncio", "syscalls/s",
                                         "--no-asyncio"))
    for label, python in found:
        p, pid = start_target(python, label, ntasks)
        try:
            if not pid:
                continue
            on, off = [], []
            for _ in range(runs):
                on.append(sampling_cost(gilprobe, pid, [], 1))
                off.append(sampling_cost(gilprobe, pid, ["--no-asyncio"], 1))
            print("%-12s %14.2f %14.2f %12.0f %12.0f" % (
                label, statistics.median(x[0] for x in on), statistics.median(x[0] for x in off),
                statistics.median(x[1] for x in on), statistics.median(x[1] for x in off)))
        finally:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
    per_sample(os.path.abspath(sys.argv[1]), 3, int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
