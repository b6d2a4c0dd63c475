"""Exact GIL timings with eBPF (`gilprobe -p`, on by default where
possible): distributions against workloads with known hold times, agreement
with the sampler, and nothing left attached afterwards."""
import json
import os
import subprocess
import time

import pytest
from conftest import (gp_json, GILPROBE, INTERPRETERS, Workload, interpreter_params, marks,
                      run_gilprobe)

MARKS = marks("contention.py")
# pyenv's runtimes have take_gil/drop_gil to probe; Debian's stripped 3.11
# inlined them: it is measured in the fallback mode.
ALL = [pytest.param(p, id=label) for label, p in INTERPRETERS]


def expected_mode(python):
    # Debian strips its binaries: no take_gil symbol, so the fallback.
    stripped = {dict(INTERPRETERS).get(label)
                for label in ("debian-3.11", "unstable-3.14", "unstable-3.15")}
    return "fallback" if python in stripped else "uprobes on take_gil"


def forced(python):
    """Debian's 3.14 is a CET build: its fallback probes are single-stepped,
    so exact timing is off unless --bpf asks for it (see the test below).
    Its 3.15 is not (no IBT property): on by default."""
    return ["--bpf"] if python == dict(INTERPRETERS).get("unstable-3.14") else []


def test_costly_fallback_probes_need_bpf():
    python = dict(INTERPRETERS)["unstable-3.14"]
    w = Workload(python, "contention.py", ["idle4"])
    try:
        default = sample(w.pid, seconds=1)
        forced_doc = sample(w.pid, "--bpf", seconds=1)
    finally:
        w.stop()
    assert default["gil_exact"] is None
    assert "single-step" in default["gil_exact_unavailable"] and "--bpf" in default[
        "gil_exact_unavailable"]
    assert forced_doc["gil_exact"]["mode"].startswith("fallback"), forced_doc["gil_exact"]
CPU_HEAVY = pytest.mark.xdist_group("cpu-heavy")


def sample(pid, *args, seconds=3, nice=None):
    r = run_gilprobe(["-p", str(pid), "-d", str(seconds), "--json"] + list(args), timeout=60,
                     nice=nice)
    assert r.returncode == 0, r.stderr
    return gp_json(r.stdout)


def exact_threads(doc):
    return {t["tid"]: t for t in doc["gil_exact"]["threads"]}


def furthest_wait_diff(doc, tids):
    """The largest gap, in points, between a thread's exact and sampled
    GIL wait shares (infinite when a thread is missing from either)."""
    sampled = {t["tid"]: t for t in doc["threads"]}
    exact = exact_threads(doc)
    if any(tid not in sampled or tid not in exact for tid in tids):
        return float("inf")
    return max(abs(exact[tid]["wait_pct"] - sampled[tid]["gil_wait_pct"]) for tid in tids)


@pytest.mark.parametrize("python", ALL)
def test_bursts_of_ten_ms_alone(python):
    """10 ms holding the GIL, 40 ms asleep: holds of ~10 ms, ~20% held."""
    w = Workload(python, "contention.py", ["burst"])
    try:
        # Measured again when the longest hold reaches 60 ms: a burster
        # preempted at the end of its burst holds on until it gets a CPU
        # back (63.5 ms once under the suite's load). A missed release
        # makes such holds in every run.
        for attempt in (1, 2):
            doc = sample(w.pid, *forced(python))
            x = doc["gil_exact"]
            if not x or not x["longest_holds"] or x["longest_holds"][0]["hold_ms"] < 60:
                break
    finally:
        w.stop()
    assert x is not None, doc["gil_exact_unavailable"]
    assert x["mode"].startswith(expected_mode(python)), x["mode"]
    t = exact_threads(doc)[w.info["tids"]["burster"]]
    assert 10 <= t["hold"]["p50_ms"] <= 14, t["hold"]
    assert 15 <= t["held_pct"] <= 25, t
    assert 15 <= x["held_pct"] <= 25, x
    # Every hold of the burster ended when it went to sleep: >= 5 ms holds
    # carry that stack. A hold that missed its release would run on through
    # the 40 ms sleep into the next burst (>= 60 ms); one preempted between
    # its burst and its sleep is real and, under the suite's load, ran 50 ms.
    longest = x["longest_holds"][0]
    assert longest["tid"] == w.info["tids"]["burster"]
    assert 10 <= longest["hold_ms"] < 60
    assert [f["function"] for f in longest["frames"][:1]] == ["burster"]


# One interpreter per exact mode: take_gil/drop_gil uprobes, and the
# fallback's (Debian's stripped 3.11).
PER_OFFSET_PYTHONS = [p for p in interpreter_params() if p.id in ("pyenv-3.12", "debian-3.11")]


@pytest.mark.parametrize("python", PER_OFFSET_PYTHONS)
def test_kernels_without_multi_uprobes_get_a_probe_per_offset(python):
    """Kernels before 6.6 have no multi-uprobe links: gilprobe attaches a
    perf-event uprobe per offset there (pretended here). The same offsets
    are probed and the same holds measured either way: 10 ms holding the
    GIL, 40 ms asleep."""
    w = Workload(python, "contention.py", ["burst"])
    docs = {}
    try:
        for label, env in (("multi", None), ("per-offset", {"GILPROBE_TEST_NO_UPROBE_MULTI": "1"})):
            r = run_gilprobe(["-p", str(w.pid), "-d", "2", "--json"], env=env, timeout=60)
            assert r.returncode == 0, (label, r.stderr)
            docs[label] = gp_json(r.stdout)
    finally:
        w.stop()
    probes = set()
    for label, doc in docs.items():
        x = doc["gil_exact"]
        assert x is not None, (label, doc["gil_exact_unavailable"])
        assert x["mode"].startswith(expected_mode(python)), (label, x["mode"])
        assert ("multi-uprobe links" in x["mode"]) == (label == "multi"), (label, x["mode"])
        probes.add(x["probes"])
        t = exact_threads(doc)[w.info["tids"]["burster"]]
        assert 10 <= t["hold"]["p50_ms"] <= 14, (label, t["hold"])
        assert 15 <= t["held_pct"] <= 25, (label, t)
    assert len(probes) == 1 and probes.pop() >= 5, [d["gil_exact"]["probes"] for d in docs.values()]


@CPU_HEAVY
@pytest.mark.parametrize("python", ALL)
def test_four_cpu_bound_threads_exact_and_sampled_agree(python):
    w = Workload(python, "contention.py", ["cpu4"])
    tids = list(w.info["tids"].values())
    try:
        # One measurement again when a thread's exact and sampled waits
        # disagree: under the suite's load the sampler's ticks come late
        # while the target runs (3.24 points apart once on 3.8 in a fresh
        # CI run, 0.2-1.5 alone). A real miscount disagrees every time.
        for attempt in (1, 2):
            doc = sample(w.pid, *forced(python), seconds=5)
            x = doc["gil_exact"]
            if x is None or attempt == 2 or (furthest_wait_diff(doc, tids) <= 3 and
                                             abs(x["held_pct"] - doc["gil"]["held_pct"]) <= 3):
                break
    finally:
        w.stop()
    x = doc["gil_exact"]
    assert x is not None, doc["gil_exact_unavailable"]
    assert x["mode"].startswith(expected_mode(python)), x["mode"]
    # A hold lasts the 5 ms switch interval plus the time the waiter whose
    # timed wait ran out takes to get a CPU and ask for the GIL: near 5 ms
    # on an idle machine, 8.4 ms seen on a loaded CI worker. Misread
    # acquisitions or releases would give holds far from that (a fraction
    # of a ms, or whole seconds).
    assert 3 <= x["hold"]["p50_ms"] <= 12.5, x["hold"]
    # Four threads always want the GIL, so it is free only between a drop
    # and the next take: a woken waiter that has no CPU yet. 97-99% on an
    # idle machine; 91.8% seen under the suite's load on two cores (the
    # sampled figure agreed). Misread releases would give far less.
    assert x["held_pct"] >= 80, x
    assert x["acquisitions"] > 0
    sampled = {t["tid"]: t for t in doc["threads"]}
    exact = exact_threads(doc)
    for tid in tids:
        assert 60 <= exact[tid]["wait_pct"] <= 90, exact[tid]
        # The bound. Measured under two extra CPU hogs: within 2.1
        # points on every interpreter, once a thread woken from its GIL
        # futex but not yet on a CPU counts as waiting (as take_gil has
        # not returned); 5 points apart before, in the CI run that failed.
        # The futex fallback (stripped runtimes) was 7-8 points of wait
        # short under load until a forced dropper's wait counted from its
        # release (within 0.7 since, measured under the suite's load). 4.5
        # for it in the suite: the sampler, short of CPU there, leans low.
        bound = 4.5 if x["mode"].startswith("fallback") else 3
        assert abs(exact[tid]["wait_pct"] - sampled[tid]["gil_wait_pct"]) <= bound, (
            x["mode"], exact[tid]["wait_pct"], sampled[tid]["gil_wait_pct"], x["check"])
    mean_exact = sum(exact[t]["wait_pct"] for t in tids) / len(tids)
    mean_sampled = sum(sampled[t]["gil_wait_pct"] for t in tids) / len(tids)
    assert abs(mean_exact - mean_sampled) <= bound, (mean_exact, mean_sampled)
    assert abs(x["held_pct"] - doc["gil"]["held_pct"]) <= bound, (x["held_pct"], doc["gil"])


@CPU_HEAVY
def test_a_sampler_short_of_cpu_says_so():
    """Two CPU hogs at normal priority and gilprobe at nice 10, all on the
    first CPU (the other stays for the rest of the suite): gilprobe gets a
    few percent of it and misses many of its 2000 ticks a second, and the
    exact check says that the sampled shares lean low, in the JSON and in
    the text."""
    label, python = INTERPRETERS[0]
    pin = ["taskset", "-c", "0"]
    hogs = [subprocess.Popen(pin + [python, "-c", "while True: pass"]) for _ in range(2)]
    w = Workload(python, "contention.py", ["cpu4"])
    try:
        # The JSON and the text run side by side, both starved.
        cmd = [GILPROBE, "-p", str(w.pid), "-d", "2", "-r", "2000"]
        runs = [subprocess.Popen(pin + ["nice", "-n", "10"] + cmd + extra, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for extra in (["--json"], [])]
        (out_json, err_json), (out_text, err_text) = [p.communicate(timeout=90) for p in runs]
        assert runs[0].returncode == 0, err_json
        doc = gp_json(out_json)
    finally:
        w.stop()
        for h in hogs:
            h.kill()
            h.wait()
    check = doc["gil_exact"]["check"]
    missed = doc["samples"]["missed"]
    assert check["sampler_missed_pct"] == pytest.approx(
        100.0 * missed / (missed + doc["samples"]["taken"]))
    assert check["sampler_missed_pct"] > 2, (check, doc["samples"])
    assert runs[1].returncode == 0, err_text
    assert "short of CPU, missed" in out_text, out_text


def test_no_bpf_turns_it_off():
    label, python = INTERPRETERS[0]
    w = Workload(python, "contention.py", ["lock3"])
    try:
        doc = sample(w.pid, "--no-bpf", seconds=0.5)
    finally:
        w.stop()
    assert doc["gil_exact"] is None
    assert "--no-bpf" in doc["gil_exact_unavailable"]


def test_fallback_mode_on_a_runtime_with_symbols():
    """The futex fallback, forced on a runtime that also allows uprobes on
    take_gil/drop_gil, measures the same holds."""
    label, python = [(l, p) for l, p in INTERPRETERS if l.startswith("pyenv")][-1]
    w = Workload(python, "contention.py", ["burst"])
    try:
        r = run_gilprobe(["-p", str(w.pid), "-d", "3", "--json"],
                         env={"GILPROBE_TEST_HIDE_SYMBOLS": "take_gil,drop_gil"})
    finally:
        w.stop()
    doc = gp_json(r.stdout)
    x = doc["gil_exact"]
    assert x["mode"].startswith("fallback"), x["mode"]
    t = exact_threads(doc)[w.info["tids"]["burster"]]
    assert 10 <= t["hold"]["p50_ms"] <= 14 and 15 <= t["held_pct"] <= 25, t


def test_nothing_to_probe_says_why():
    label, python = INTERPRETERS[0]
    w = Workload(python, "contention.py", ["lock3"])
    try:
        hide = {"GILPROBE_TEST_HIDE_SYMBOLS":
                "take_gil,drop_gil,PyEval_SaveThread,PyEval_RestoreThread"}
        doc = gp_json(run_gilprobe(["-p", str(w.pid), "-d", "0.5", "--json"], env=hide).stdout)
        text = run_gilprobe(["-p", str(w.pid), "-d", "0.3"], env=hide).stdout
    finally:
        w.stop()
    assert doc["gil_exact"] is None
    assert "take_gil" in doc["gil_exact_unavailable"]
    assert "GIL, exact: not measured (" in text
    assert doc["gil"]["held_pct"] is not None  # the sampler carried on


def owned_bpf_ids(pid):
    """BPF program and link ids held open by process pid (its fdinfo)."""
    ids = set()
    fd_dir = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fd_dir):
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("prog_id", "link_id"):
                        ids.add((key, int(value)))
        except OSError:
            pass
    return ids


def live_bpf_ids():
    ids = set()
    for kind, key in (("prog", "prog_id"), ("link", "link_id")):
        out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True)
        for obj in gp_json(out.stdout or "[]"):
            ids.add((key, obj["id"]))
    return ids


def uprobe_events():
    path = "/sys/kernel/tracing/uprobe_events"
    if not os.path.exists(path):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"],
                       capture_output=True)
    with open(path) as f:
        return [l for l in f if "gilprobe" in l or "take_gil" in l or "drop_gil" in l]


@pytest.mark.parametrize("how", ["exit", "SIGKILL"])
def test_nothing_stays_attached(how):
    label, python = [(l, p) for l, p in INTERPRETERS if l.startswith("pyenv")][-1]
    w = Workload(python, "contention.py", ["cpu4"])
    try:
        p = subprocess.Popen([GILPROBE, "-p", str(w.pid), "-d", "30" if how == "SIGKILL" else "1",
                              "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        ours = set()
        # Programs and the uprobe/iterator links that attach them.
        while not any(k == "link_id" for k, _ in ours) or len(ours) < 8:
            assert time.time() < deadline and p.poll() is None, "probes never attached"
            time.sleep(0.05)
            ours |= owned_bpf_ids(p.pid)
        if how == "SIGKILL":
            p.kill()
        p.communicate(timeout=30)
    finally:
        w.stop()
    deadline = time.time() + 5
    while ours & live_bpf_ids():
        assert time.time() < deadline, "left attached: %s" % (ours & live_bpf_ids())
        time.sleep(0.1)
    assert uprobe_events() == []


def test_works_without_tracefs():
    """Perf-event uprobes and raw tracepoints need no tracefs: run gilprobe
    in a private mount namespace where it is not mounted."""
    label, python = [(l, p) for l, p in INTERPRETERS if l.startswith("pyenv")][-1]
    w = Workload(python, "contention.py", ["burst"])
    try:
        script = ("umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; "
                  "test ! -e /sys/kernel/tracing/uprobe_events || exit 99; "
                  "exec %s -p %d -d 1 --json" % (GILPROBE, w.pid))
        r = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True,
                           text=True, timeout=60)
    finally:
        w.stop()
    assert r.returncode == 0, (r.returncode, r.stderr)
    doc = gp_json(r.stdout)
    assert doc["gil_exact"] is not None, doc["gil_exact_unavailable"]
    assert doc["gil_exact"]["acquisitions"] > 0


FALLBACK_ENV = {"GILPROBE_TEST_HIDE_SYMBOLS": "take_gil,drop_gil"}


# Runtimes with take_gil on which the fallback is forced too: 3.8 (the GIL
# in the runtime) and 3.12 (per interpreter). Debian's 3.11, 3.14 and 3.15
# use it natively; the fallback's logic does not differ between versions,
# and the suite's time limit does not allow it on every one.
FORCED_FALLBACK = ("pyenv-3.8", "pyenv-3.12")


def modes(python):
    """(label, extra args, env) of every exact mode this interpreter is
    measured in: its own, and on FORCED_FALLBACK the fallback too."""
    own = [("own", forced(python), None)]
    if expected_mode(python) == "fallback" or python not in [
            dict(INTERPRETERS).get(label) for label in FORCED_FALLBACK]:
        return own
    return own + [("fallback", [], FALLBACK_ENV)]


@pytest.mark.parametrize("python", ALL)
def test_exact_agrees_with_sampled_under_thread_churn_and_forks(python):
    """Threads that start, take the GIL for the first time and give it up
    for the last time in their teardown (churn); a process that forks
    (fork); threads that end while holding the GIL (exit). Whatever path a
    thread gets or loses the GIL by, every exact mode agrees with the
    sampled held share over the same window (within 3 points on an idle
    machine, the run's own tolerance under this suite's load), and says it
    checked."""
    for mode in ("churn", "fork", "exit"):
        w = Workload(python, "gil_churn.py", [mode])
        try:
            for label, args, env in modes(python):
                # Measured again when they disagree: a sampler short of CPU
                # (the suite's two loaded workers on 2 cores) missed up to
                # 96% of its ticks in some runs, and the samples it did take
                # cluster in time; its tolerance then widens, and each run's
                # own check flagged the disagreement. A load burst can span
                # two 3 s runs (Debian's 3.14, exit mode, once in a full run:
                # 59.0 vs 50.3 twice; 0.0-2.7 apart idle and under two CPU
                # hogs): three tries. A real miscount disagrees every time.
                for attempt in (1, 2, 3):
                    r = run_gilprobe(["-p", str(w.pid), "-d", "2", "--json"] + args, env=env,
                                     timeout=60)
                    assert r.returncode == 0, r.stderr
                    doc = gp_json(r.stdout)
                    x = doc["gil_exact"]
                    assert x, (mode, label, doc["gil_exact_unavailable"])
                    assert x["mode"].startswith("fallback") == (
                        label == "fallback" or expected_mode(python) == "fallback")
                    sampled = doc["gil"]["held_pct"]
                    tolerance = x["check"]["held_tolerance"]
                    # The exact window is the sampled one, not the set-up
                    # and tear-down around it (seconds under load).
                    assert x["window_s"] == pytest.approx(doc["run"]["duration_s"], abs=0.002), (
                        x["window_s"], doc["run"]["duration_s"])
                    # A disagreement beyond the tolerance is never printed as truth.
                    if abs(x["held_pct"] - sampled) > tolerance:
                        assert x["consistent"] is False, x["check"]
                    assert x["check"]["sampled_held_pct"] == pytest.approx(sampled)
                    # Measured again too when a sampler that missed under 1% of
                    # its ticks still leans more than 3 points off: under the
                    # suite's load its ticks come late while the target runs
                    # (exact 27.2 vs sampled 22.7 once on Debian's 3.11; 0.0-0.7
                    # apart in six idle runs). A real miscount is off both times.
                    close = (x["check"]["sampler_missed_pct"] >= 1.0 or
                             abs(x["held_pct"] - sampled) <= 3)
                    if x["consistent"] and close:
                        break
                # Within 3 on an idle machine in every mode (0.0-1.3
                # measured); under the suite's parallel load the sampler,
                # short of CPU, leans low by up to 5.3 (seen): the bound is
                # the run's own check, its 5-point floor plus 3 standard
                # errors of the sampled share.
                assert 5 <= tolerance <= 8, x["check"]
                assert abs(x["held_pct"] - sampled) <= tolerance, (mode, label, x["held_pct"],
                                                                   sampled, tolerance, attempt)
                assert x["consistent"] is True, (mode, label, x["check"])
                # The bound wherever the sampler got its ticks (under
                # 1% missed: not short of CPU): within 3 points.
                if x["check"]["sampler_missed_pct"] < 1.0:
                    assert abs(x["held_pct"] - sampled) <= 3, (mode, label, x["held_pct"],
                                                               sampled, x["check"])
        finally:
            w.stop()


@pytest.mark.parametrize("label", ["debian-3.11", "unstable-3.15", "pyenv-3.12"])
def test_a_blocking_read_after_an_unseen_release_is_not_held(label):
    """The main thread computes for 0.5 s, then blocks 2 s reading a pipe,
    over and over: held about a fifth of the time. Debian's 3.15 inlines
    the release before the read: the fallback took the thread, back from
    its read, for one that had held the GIL since its release (99.8% held
    against 20% sampled). On the stripped runtimes and on 3.12 with the
    fallback forced."""
    python = dict(INTERPRETERS)[label]
    env = FALLBACK_ENV if label == "pyenv-3.12" else None
    w = Workload(python, "blocking_read.py")
    try:
        # Once more when the run fails its own check: under the suite's
        # load the sampler misses ticks while the target runs (exact 34.5
        # vs sampled 28.6 once on 3.12). A read counted held fails twice.
        for attempt in (1, 2):
            r = run_gilprobe(["-p", str(w.pid), "-d", "5.5", "--json"], env=env, timeout=60)
            assert r.returncode == 0, r.stderr
            doc = gp_json(r.stdout)
            if doc["gil_exact"] and doc["gil_exact"]["consistent"]:
                break
    finally:
        w.stop()
    x = doc["gil_exact"]
    assert x and x["mode"].startswith("fallback"), (x, doc["gil_exact_unavailable"])
    # A fifth of the time, give or take the child's start-up and a cut
    # cycle at either end; seconds of reading counted held would make it
    # 60% or more.
    assert 12 <= x["held_pct"] <= 45, (x["held_pct"], doc["gil"]["held_pct"], x["longest_holds"])
    assert x["consistent"] is True, x["check"]
    # The 0.5 s of work, plus the child's start-up (870 ms once and 1345 ms
    # once under the suite's load: Popen holds the GIL while it forks); a
    # read counted as held would make it 2.5 s or more.
    assert max(h["hold_ms"] for h in x["longest_holds"]) < 2400, x["longest_holds"]


@pytest.mark.xdist_group("cpu-heavy")
def test_no_return_probes_under_seccomp_on_kernels_that_kill_for_them():
    """Kernels 6.11-6.13 kill a seccomp-filtered process at a return probe:
    on such a kernel (pretended: GILPROBE_TEST_KERNEL_RELEASE) gilprobe
    puts none in a filtered target and says why; an unfiltered target, or
    this machine's own kernel, gets its exact timing. The target lives."""
    python = dict(INTERPRETERS)["debian-3.11"]
    old_kernel = {"GILPROBE_TEST_KERNEL_RELEASE": "6.12.9-amd64"}
    filtered = Workload(python, "seccomp_filtered.py")
    plain = Workload(python, "contention.py", ["burst"])
    try:
        assert filtered.info["filtered"] is True
        docs = {}
        for name, w, env in (("filtered-old", filtered, old_kernel), ("filtered-now", filtered, None),
                             ("plain-old", plain, old_kernel)):
            r = run_gilprobe(["-p", str(w.info["pid"]), "-d", "1", "--json"], env=env)
            assert r.returncode == 0, r.stderr
            docs[name] = gp_json(r.stdout)
        assert filtered.proc.poll() is None and plain.proc.poll() is None
    finally:
        filtered.stop()
        plain.stop()
    old = docs["filtered-old"]
    assert old["gil_exact"] is None, old["gil_exact"]
    assert "seccomp filter" in old["gil_exact_unavailable"] and "6.12.9" in old["gil_exact_unavailable"]
    assert old["gil"]["held_pct"] > 80  # still sampled
    assert docs["filtered-now"]["gil_exact"], docs["filtered-now"]["gil_exact_unavailable"]
    assert docs["plain-old"]["gil_exact"], docs["plain-old"]["gil_exact_unavailable"]
