"""`gilprobe serve` across many targets (issue 18):

1. Its CPU with 50 Python targets at the default rate (and at -r RATES
   given), measured over --seconds after a warm-up: the server and all its
   collectors (each a process of its own), as a share of one core, and per
   target, while a scraper fetches /metrics every --scrape seconds (15 s,
   as examples/fleet/prometheus.yml; each list entry is a run of its own:
   a collector sends its figures at each scrape). The targets:
   bench/serve_target.py (a service at rest: two workers waiting on a
   queue, 1 ms of work every 100 ms).
2. `serve --all` on a host with 20 Python targets of every interpreter this
   machine has (pyenv 3.8-3.13, Debian's stripped 3.11, 3.14/3.15 in the
   chroot) and 5 other processes whose command lines match too: which PIDs
   are exported (all 20 Python ones, none other), the series count, and
   the CPU.
3. The HTTP side under load: `wrk` (8 keep-alive connections) on /metrics
   for 10 s while serve samples one target at 10 Hz: requests a second, and
   the collector's sample rate before and during the load (the server's
   threads are apart from the sampler, so the rate must hold).

    bench/bench_serve.py ./gilprobe [--seconds 60] [--rates 1,2,5] [--scrape 15,1]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from interpreters import interpreters, sync_into_chroot  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """utime + stime of pid (seconds), 0 when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except OSError:
        return 0.0


def children(pid):
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def tree_cpu(pid):
    """The server's CPU and its live collectors'."""
    return proc_cpu(pid) + sum(proc_cpu(c) for c in children(pid))


def start_target(python, workdir, n):
    script = os.path.join(workdir, "target%d.py" % n)
    shutil.copy(os.path.join(HERE, "serve_target.py"), script)
    p = subprocess.Popen([python, script], stdout=subprocess.PIPE, text=True)
    info = json.loads(p.stdout.readline())
    return p, info["pid"]


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
        return r.read().decode()


def exported_pids(text):
    return {int(m) for m in re.findall(r'^gilprobe_target_info\{pid="(\d+)"', text, re.M)}


def series(text):
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def serve(gilprobe, args):
    port = free_port()
    p = subprocess.Popen([gilprobe, "serve", "--listen", "127.0.0.1:%d" % port] + args,
                         stderr=subprocess.DEVNULL)
    return p, port


def wait_exported(port, want, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if len(exported_pids(scrape(port))) >= want:
                return True
        except OSError:
            pass
        time.sleep(1)
    return False


def scrape_every(port, interval, until):
    """Scrapes /metrics every interval seconds (on a fixed grid, as
    Prometheus does) until the monotonic time until."""
    at = time.monotonic()
    while at < until:
        time.sleep(max(0.0, at - time.monotonic()))
        try:
            scrape(port)
        except OSError:
            pass
        at += interval


def measure(gilprobe, pids, rate, seconds, scrape_s):
    args = ["-r", str(rate)] if rate else []
    for pid in pids:
        args += ["-p", str(pid)]
    p, port = serve(gilprobe, args)
    try:
        wait_exported(port, len(pids))
        time.sleep(10)  # warm-up: attach costs are not the steady state
        c0, t0 = tree_cpu(p.pid), time.monotonic()
        scrape_every(port, scrape_s, t0 + seconds)
        time.sleep(max(0.0, t0 + seconds - time.monotonic()))
        c1, t1 = tree_cpu(p.pid), time.monotonic()
        text = scrape(port)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    share = (c1 - c0) / (t1 - t0) * 100
    return share, series(text), len(exported_pids(text))


def samples_total(port):
    m = re.search(r'^gilprobe_samples_total\{[^}]*\} (\d+)$', scrape(port), re.M)
    return int(m.group(1)) if m else 0


def sample_rate(port, seconds, during=None):
    n0, t0 = samples_total(port), time.monotonic()
    out = during() if during else time.sleep(seconds)
    n1, t1 = samples_total(port), time.monotonic()
    return (n1 - n0) / (t1 - t0), out


def http_load(gilprobe, workdir, seconds):
    if not shutil.which("wrk"):
        print("   wrk is missing (make deps installs it)")
        return
    target, pid = start_target(sys.executable, workdir, 200)
    p, port = serve(gilprobe, ["-r", "10", "-p", str(pid)])
    try:
        wait_exported(port, 1)
        time.sleep(5)
        idle, _ = sample_rate(port, seconds)
        c0 = tree_cpu(p.pid)
        loaded, wrk = sample_rate(port, seconds, lambda: subprocess.run(
            ["wrk", "-t", "2", "-c", "8", "-d", str(int(seconds)),
             "http://127.0.0.1:%d/metrics" % port], capture_output=True, text=True))
        cpu = (tree_cpu(p.pid) - c0) / seconds * 100
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        target.kill()
        target.wait()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", wrk.stdout)
    print("   %s requests/s for %.0f s (non-2xx: %s); samples %.2f/s at rest, %.2f/s under load "
          "(%.0f%%); serve %.0f%% of a core under load"
          % (rate.group(1) if rate else "?", seconds,
             "yes" if "Non-2xx" in wrk.stdout else "none", idle, loaded,
             loaded / idle * 100 if idle else 0, cpu))


def main():
    a = argparse.ArgumentParser()
    a.add_argument("gilprobe")
    a.add_argument("--seconds", type=float, default=60)
    a.add_argument("--rates", default="", help="also these rates (Hz), comma-separated")
    a.add_argument("--targets", type=int, default=50)
    a.add_argument("--only-rates", action="store_true", help="not the default rate; no part 2")
    a.add_argument("--scrape", default="15", help="scrape intervals (s), comma-separated")

    o = a.parse_args()
    found, missing = interpreters()
    if missing:
        print("missing interpreters: %s" % ", ".join(missing))
    sync_into_chroot()
    workdir = tempfile.mkdtemp(prefix="gp-bench-serve-")
    os.chmod(workdir, 0o755)
    procs = []
    try:
        print("1. %d targets (serve_target.py on %s), serve's own CPU over %.0f s"
              % (o.targets, sys.executable, o.seconds))
        pids = []
        for n in range(o.targets):
            p, pid = start_target(sys.executable, workdir, n)
            procs.append(p)
            pids.append(pid)
        for rate in ([None] if not o.only_rates else []) + [float(r) for r in o.rates.split(",") if r]:
            for scrape_s in [float(x) for x in o.scrape.split(",") if x]:
                share, nseries, nexp = measure(o.gilprobe, pids, rate, o.seconds, scrape_s)
                print("   rate %-8s scraped every %4g s: %5.2f%% of a core (%.3f%% per target), "
                      "%d series, %d exported"
                      % ("default" if rate is None else "%g Hz" % rate, scrape_s, share,
                         share / o.targets, nseries, nexp))
        for p in procs:
            p.kill()
            p.wait()
        procs = []
        if o.only_rates:
            return

        print("2. serve --all: 20 Python targets of %d interpreters + 5 other processes" % len(found))
        python_pids = set()
        for n in range(20):
            label, python = found[n % len(found)]
            p, pid = start_target(python, workdir, 100 + n)
            procs.append(p)
            python_pids.add(pid)
        others = set()
        for n in range(5):
            p = subprocess.Popen(["bash", "-c", "exec -a %s/other%d.py sleep 600" % (workdir, n)])
            procs.append(p)
            others.add(p.pid)
        p, port = serve(o.gilprobe, ["--all", "--match", workdir])
        try:
            wait_exported(port, 20)
            time.sleep(10)
            c0, t0 = tree_cpu(p.pid), time.monotonic()
            time.sleep(o.seconds)
            c1, t1 = tree_cpu(p.pid), time.monotonic()
            text = scrape(port)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
        exp = exported_pids(text)
        print("   exported %d of 20 Python targets, %d of the 5 others; %d series; "
              "%.2f%% of a core" % (len(exp & python_pids), len(exp & others), series(text),
                                    (c1 - c0) / (t1 - t0) * 100))
        versions = sorted(set(re.findall(r'gilprobe_target_info\{[^}]*python_version="([^"]+)"',
                                         text)))
        print("   versions: %s" % ", ".join(versions))

        print("3. HTTP load: wrk on /metrics, one target sampled at 10 Hz")
        http_load(o.gilprobe, workdir, 10)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
