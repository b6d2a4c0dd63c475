"""`gilprobe -p PID`: the sampled GIL report against workloads whose GIL and
lock behaviour is known (tests/workloads/contention.py). Tolerances follow
from what the workloads do, not from observed output."""
import json
import signal
import subprocess
import time

import pytest
from conftest import gp_json, GILPROBE, Workload, marks, run_gilprobe

MARKS = marks("contention.py")


def sample(pid, *args, seconds=2):
    r = run_gilprobe(["-p", str(pid), "-d", str(seconds), "--json"] + list(args), timeout=60)
    assert r.returncode == 0, r.stderr
    doc = gp_json(r.stdout)
    assert doc["schema"] == 1 and doc["command"] == "sample"
    assert doc["samples"]["taken"] >= 0.5 * doc["samples"]["requested"], doc["samples"]
    return doc


def threads_by_tid(doc):
    return {t["tid"]: t for t in doc["threads"]}


# Workloads that keep 4 threads busy measure the GIL's hand-off gaps, which
# widen when CPUs are oversubscribed: they run one at a time (one xdist
# group), beside the lighter tests.
CPU_HEAVY = pytest.mark.xdist_group("cpu-heavy")


def run_mode(python, mode, *extra):
    return Workload(python, "contention.py", [mode] + list(extra))


@CPU_HEAVY
def test_four_cpu_bound_threads(python_alone):
    python = python_alone
    rates = {}
    for interval in (None, 0.001):
        extra = ["--switch-interval", str(interval)] if interval else []
        w = run_mode(python, "cpu4", *extra)
        try:
            doc = sample(w.pid)
        finally:
            w.stop()
        gil = doc["gil"]
        interval_ms = 1.0 if interval else 5.0
        assert gil["switch_interval_ms"] == interval_ms
        # Each hand-off leaves the GIL free for a thread wake-up: ~0.1 ms,
        # up to ~0.3 ms on this VM: under 5% of the default 5 ms interval,
        # up to 30% of a 1 ms one.
        assert gil["held_pct"] >= (95 if interval_ms == 5.0 else 70), gil
        assert gil["contended_pct"] >= 90, gil
        # A hand-off needs a waiter's timed wait (one interval) to expire,
        # so at most one per interval; with 4 busy threads, close to that.
        # Each cycle is the interval plus the woken waiter's wait for a CPU
        # (L): 0.3 ms alone, 2.6 ms seen beside the suite's other worker
        # (275/s at 1 ms). The floor allows L up to 5.7 ms at 1 ms and
        # 11 ms at 5 ms; misread hand-offs are off by far more.
        ceiling = 1000.0 / interval_ms
        floor = 0.15 if interval_ms == 1.0 else 0.3
        assert floor * ceiling <= gil["handoffs_per_s"] <= 1.1 * ceiling, gil
        assert gil["mean_hold_ms"] >= 0.9 * interval_ms, gil
        threads = threads_by_tid(doc)
        for name, tid in w.info["tids"].items():
            t = threads[tid]
            assert t["name"] == name
            assert 60 <= t["gil_wait_pct"] <= 90, t
            assert 10 <= t["gil_held_pct"] <= 40, t
            top = t["top_stacks"]["gil_wait"][0]["frames"][0]
            assert top["function"] == "spin" and top["line"] in (MARKS["spin"], MARKS["spin"] - 1)
            assert t["gil_wait_stretches"]["count"] > 0
            assert t["gil_wait_stretches"]["p50_ms"] >= doc["samples"]["resolution_ms"] * 0.99
        rates[interval_ms] = gil["handoffs_per_s"]
        # Four threads fighting for the GIL: the top finding is S2.
        assert doc["findings"][0]["scenario"] == "S2", doc["findings"]
        assert "spin" in doc["findings"][0]["culprit"]
        assert doc["run"]["python_threads"] == {"min": 5, "max": 5, "created": 0, "exited": 0}
    # Each cycle is one interval plus the waiter's wake-up latency L, so the
    # ratio is (5 + L) / (1 + L): 4 when L is 0.3 ms, but under 2 once the
    # other test worker pushes L past 3 ms (seen: 309/s against 165/s).
    # 1.5 still fails if the interval were not honoured or hand-offs misread.
    assert rates[1.0] >= 1.5 * rates[5.0], rates


def test_sleeping_and_io_threads_do_not_contend(python):
    w = run_mode(python, "idle4")
    try:
        doc = sample(w.pid)
    finally:
        w.stop()
    assert doc["gil"]["held_pct"] < 10, doc["gil"]
    threads = threads_by_tid(doc)
    for name, tid in w.info["tids"].items():
        t = threads[tid]
        assert t["gil_wait_pct"] < 3, t
        # Blocked most of the time (runnable a little more when the
        # machine's CPUs are busy with other tests).
        if name.startswith("nap"):
            assert t["sleep_pct"] >= 70, t
        else:
            assert t["io_wait_pct"] + t["sleep_pct"] >= 60, t
    # A negative control: nothing to warn about.
    assert [f for f in doc["findings"] if f["severity"] != "info"] == []


def check_lock_waiters(doc, w, count):
    waiters = {tid for name, tid in w.info["tids"].items() if name.startswith("waiter")}
    assert len(waiters) == count
    threads = threads_by_tid(doc)
    for tid in waiters:
        assert threads[tid]["lock_wait_pct"] >= 90, threads[tid]
    lock = doc["locks"][0]
    assert set(lock["waiter_tids"]) == waiters and lock["waiters"] == count
    assert lock["wait_pct"] >= 90
    assert lock["wait_site"]["function"] == "lock_waiter"
    assert lock["wait_site"]["line"] == MARKS["lock_wait"]
    holder = w.info["tids"]["holder"]
    seen = {a["tid"]: a for a in lock["meanwhile"]}
    assert seen[holder]["state"] == "sleep"
    assert seen[holder]["frames"][0]["line"] == MARKS["hold"]


def test_three_threads_blocked_on_one_lock(python):
    w = run_mode(python, "lock3")
    try:
        doc = sample(w.pid, seconds=1)
    finally:
        w.stop()
    check_lock_waiters(doc, w, 3)
    top = doc["findings"][0]
    assert (top["scenario"], top["severity"]) == ("S5", "critical"), doc["findings"]
    assert "lock_waiter (" in top["culprit"] and ":%d)" % MARKS["lock_wait"] in top["culprit"]
    # Every sample read in one BPF program run (this machine allows eBPF).
    assert doc["sampler"]["bpf_reader_samples"] == doc["samples"]["taken"], doc["sampler"]
    assert doc["sampler"]["read_syscalls"] < 1.5 * doc["samples"]["taken"]


def test_many_threads_read_through_bpf_and_proc_alike(python):
    """Memory and thread states read by the BPF sample reader and by
    process_vm_readv + /proc (--no-bpf) must tell the same story."""
    w = run_mode(python, "lock15")
    try:
        with_bpf = sample(w.pid, seconds=1)
        without = sample(w.pid, "--no-bpf", seconds=1)
    finally:
        w.stop()
    assert with_bpf["sampler"]["bpf_reader"], with_bpf["sampler"]["bpf_note"]
    assert with_bpf["sampler"]["bpf_reader_samples"] >= 0.9 * with_bpf["samples"]["taken"]
    assert not without["sampler"]["bpf_reader"]
    assert without["sampler"]["bpf_reader_samples"] == 0
    for doc in (with_bpf, without):
        check_lock_waiters(doc, w, 15)


@CPU_HEAVY
def test_native_code_that_released_the_gil(python_alone):
    python = python_alone
    w = run_mode(python, "nogil")
    try:
        doc = sample(w.pid)
    finally:
        w.stop()
    threads = threads_by_tid(doc)
    hasher = threads[w.info["tids"]["hasher"]]
    spin = threads[w.info["tids"]["spin"]]
    assert hasher["nogil_running_pct"] >= 50, hasher
    assert hasher["nogil_running_pct"] > hasher["gil_held_pct"] + hasher["gil_wait_pct"], hasher
    top = hasher["top_stacks"]["nogil_running"][0]["frames"][0]
    assert (top["function"], top["line"]) == ("hasher", MARKS["pbkdf2"])
    assert spin["gil_held_pct"] >= 80, spin


def test_ctrl_c_ends_early_and_still_reports(python):
    w = run_mode(python, "lock3")
    try:
        p = subprocess.Popen([GILPROBE, "-p", str(w.pid), "-d", "60", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        w.stop()
    assert p.returncode == 0, err
    doc = gp_json(out)
    assert doc["run"]["interrupted"] is True
    # Interrupted 1 s after the start, of 60: what came before the signal
    # (the attach takes 0.5 s and more on a loaded machine).
    assert 0.1 <= doc["run"]["duration_s"] <= 10
    assert doc["locks"][0]["waiters"] == 3


def test_target_exiting_midway_is_reported(python):
    w = run_mode(python, "idle4")
    p = subprocess.Popen([GILPROBE, "-p", str(w.pid), "-d", "30", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    w.stop()
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    doc = gp_json(out)
    assert doc["run"]["process_exited"] is True
    assert doc["run"]["duration_s"] < 10
    assert doc["samples"]["taken"] > 100


def test_thread_churn_is_counted(python):
    """The workload starts about a hundred threads a second (8 at a time,
    each waiting for the GIL); the sampler counts those its thread-list
    refreshes (10 a second) find alive: 6 to 22 in 1.5 s, measured, so 3 s
    for a margin that the suite's load cannot eat."""
    w = Workload(python, "churn.py")
    try:
        doc = sample(w.pid, seconds=3)
    finally:
        w.stop()
    run = doc["run"]
    assert run["python_threads"]["created"] > 5 and run["python_threads"]["exited"] > 5, run
    assert run["os_threads"]["created"] > 5, run
    assert any(t["exited"] for t in doc["threads"])


def test_threads_that_exited_count_only_while_they_lived(python):
    """Short sleepers (50 ms asleep, then gone): their samples are of their
    life only - asleep - whether the kernel views come from the eBPF
    reader or from /proc. Samples taken between a thread's exit and the
    next thread-list refresh used to count, as running."""
    w = Workload(python, "short_sleepers.py")
    try:
        docs = [sample(w.pid, *args, seconds=1.5) for args in ([], ["--no-bpf"])]
    finally:
        w.stop()
    life_s = w.info["life_s"]
    for doc in docs:
        exited = [t for t in doc["threads"] if t["exited"]]
        assert len(exited) >= 5, doc["threads"]
        rate = doc["samples"]["rate_hz"]
        samples = sum(t["samples"] for t in exited)
        asleep = sum(t["samples"] * t["sleep_pct"] / 100 for t in exited)
        # Each is seen from the refresh after its start (up to 0.1 s late)
        # to its exit: on average under 50 ms of ticks (80 allows for
        # oversleeping on a loaded machine; one starved thread once took
        # 100). Counted on until the next refresh, they had 100 each.
        assert samples <= len(exited) * rate * (life_s + 0.03), [
            (t["tid"], t["samples"], t["sleep_pct"]) for t in exited]
        # Asleep but for their start and end: 99.5% idle, 88% once on a
        # loaded machine (starts and exits wait for the CPU); counted after
        # their exit they were 25% asleep.
        # (Starting takes some of their 50 ms: 99.5% asleep idle, 72-88%
        # under the full suite's load.)
        assert asleep >= 0.6 * samples, (asleep, samples, exited[:3])


def test_text_report_sections(python):
    w = run_mode(python, "lock3")
    try:
        r = run_gilprobe(["-p", str(w.pid), "-d", "0.5"])
    finally:
        w.stop()
    assert r.returncode == 0, r.stderr
    for section in ("\nRun\n", "\nGIL (sampled every", "\nThreads (sorted by GIL wait",
                    "\nLocks ("):
        assert section in r.stdout
    assert "lock_waiter (" in r.stdout and ":%d)" % MARKS["lock_wait"] in r.stdout


@pytest.mark.parametrize("args", [["-p", "1", "-r", "0"], ["-p", "1", "-d", "-1"],
                                  ["-p", "1", "-r", "abc"], ["-d", "1"]])
def test_sampler_usage_errors(args):
    r = run_gilprobe(args)
    assert r.returncode == 2, r.stderr
    assert "gilprobe --help" in r.stderr


def test_threads_that_did_not_run_keep_their_stacks_and_moved_ones_are_read(python):
    """With the eBPF reader a thread that has not run since the last sample
    is not read again (its stack cannot have changed): most samples of a
    thread asleep by turns in two functions are such, yet both places show,
    about half of the time each (a wrong "has not run" would freeze it in
    the first one)."""
    w = Workload(python, "alternating_sleeper.py")
    try:
        doc = sample(w.pid, "-r", "200", seconds=1)
    finally:
        w.stop()
    if not doc["sampler"]["bpf_reader"]:
        pytest.fail("the BPF sample reader was not used: " + doc["sampler"]["bpf_note"])
    assert doc["sampler"]["still_thread_samples"] >= 0.5 * doc["sampler"]["thread_samples"], \
        doc["sampler"]
    t = threads_by_tid(doc)[w.info["tid"]]
    where = {"sleep_in_a": 0, "sleep_in_b": 0}
    for stacks in t["top_stacks"].values():
        for s in stacks:
            for f in s["frames"]:
                if f["function"] in where:
                    where[f["function"]] += s["samples"]
                    break
    total = sum(where.values())
    assert total >= 0.8 * t["samples"], (where, t["samples"])
    for name, n in where.items():
        assert 0.3 * total <= n <= 0.7 * total, where
