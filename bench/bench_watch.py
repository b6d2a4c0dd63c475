"""`gilprobe watch` for a long time at its default rate on a 50-thread
target with 100 thread starts a second and a planned spike every minute
(bench/watch_soak_target.py): gilprobe's own CPU (share of one core), its
RSS after the first minute and at the end (flat: memory is bounded by
--keep/--window and the live threads, not by the run's length), and how
many of the planned spikes became a bundle.

    bench/bench_watch.py ./gilprobe [--minutes 60]

`make bench` runs it for WATCH_SOAK_MIN minutes (default 10); the issue's
figure is an hour. SIGUSR1 every --usr1-every seconds asks for a bundle
too, so that the run writes many (their writers' CPU is counted)."""
import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_s(pid):
    """Its CPU and that of its finished children (the bundle writers)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("gilprobe")
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--usr1-every", type=float, default=10.0,
                   help="also ask for a bundle (SIGUSR1) this often: many bundles in a run")
    a = p.parse_args()
    seconds = a.minutes * 60
    out = tempfile.mkdtemp(prefix="gilprobe-soak-")
    target = subprocess.Popen([a.python, os.path.join(HERE, "watch_soak_target.py")],
                              stdout=subprocess.PIPE, text=True)
    json.loads(target.stdout.readline())
    ready = time.monotonic()
    watch = subprocess.Popen([a.gilprobe, "watch", "-p", str(target.pid), "--out", out,
                              "--trigger", "gil.wait_p99_ms>50"],
                             stderr=subprocess.PIPE, text=True)
    time.sleep(60)
    cpu0, rss0, t0 = cpu_s(watch.pid), rss_kb(watch.pid), time.monotonic()
    samples = []
    next_rss = t0 + 60
    while time.monotonic() - t0 < seconds - 60:
        time.sleep(max(0.1, min(a.usr1_every, seconds - 60 - (time.monotonic() - t0))))
        watch.send_signal(signal.SIGUSR1)
        if time.monotonic() >= next_rss:
            samples.append(rss_kb(watch.pid))
            next_rss += 60
    cpu1, rss1, t1 = cpu_s(watch.pid), rss_kb(watch.pid), time.monotonic()
    stopped = time.monotonic()
    watch.send_signal(signal.SIGINT)
    _, err = watch.communicate(timeout=120)
    target.kill()
    spikes = [json.loads(l) for l in target.stdout.read().splitlines() if '"spike"' in l]
    # a spike too close to the end has not had its bundle written yet
    caught_by_then = [x for x in spikes if ready + x["t"] <= stopped - 15]
    target.wait()
    bundles = [b for b in glob.glob(os.path.join(out, "*")) if os.path.isdir(b)]
    spiked = s2 = 0  # bundles a trigger opened (not only SIGUSR1), with S2 on top
    for b in bundles:
        doc = json.load(open(os.path.join(b, "report.json")))
        if any(t["expr"] != "SIGUSR1" for t in doc["triggers"]):
            spiked += 1
            s2 += bool(doc["findings"]) and doc["findings"][0]["scenario"] == "S2"
    print(f"watch soak: {a.minutes:.0f} min at 100 Hz, 50 threads + 100 thread starts/s "
          f"({os.path.basename(a.python)})")
    print(f"  gilprobe CPU: {100 * (cpu1 - cpu0) / (t1 - t0):.2f}% of one core "
          f"(after the first minute)")
    print(f"  gilprobe RSS: {rss0} kB after 1 min, {rss1} kB at the end "
          f"(min {min(samples + [rss1])}, max {max(samples + [rss1])} kB in between)")
    print(f"  RSS each minute (MB): {' '.join(f'{x / 1024:.1f}' for x in samples)}")
    print(f"  planned spikes: {len(caught_by_then)} (15 s before the end or more); "
          f"bundles a trigger opened: {spiked} ({s2} with S2 "
          f"on top); all bundles: {len(bundles)} (SIGUSR1 every {a.usr1_every:.0f} s too)")
    if spikes:
        print(f"  target: {spikes[-1]['threads_started'] / spikes[-1]['t']:.0f} thread starts/s "
              f"(until the last spike)")
    print(f"  bundles in {out}")
    if watch.returncode != 0:
        print(err[-2000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
