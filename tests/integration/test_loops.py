"""asyncio event loops: stalls, their culprits, idle loops, several loops
(tests/workloads/asyncio_loop.py injects a 300 ms stall every second)."""
import json
import subprocess

import pytest
from conftest import GILPROBE, gp_json, INTERPRETERS, Workload, marks, run_gilprobe

MARKS = marks("asyncio_loop.py")
PERIOD_S, STALL_MS = 1.0, 300
SLEEP_SYSCALLS = ("clock_nanosleep", "nanosleep", "select", "pselect6")


# Exact stall times are compared to the workload's own: these runs go one
# at a time (the CPU-heavy group), so only the other worker's test can
# delay the loop thread between the two measurements.
TIMED = pytest.mark.xdist_group("cpu-heavy")


@pytest.fixture
def python_debian():
    return dict(INTERPRETERS)["debian-3.11"]


def sample_loops(python, *args, seconds=3.5):
    w = Workload(python, "asyncio_loop.py", list(args))
    try:
        r = run_gilprobe(["-p", str(w.pid), "-d", str(seconds), "--json"], timeout=60)
    finally:
        w.stop()
    assert r.returncode == 0, r.stderr
    doc = gp_json(r.stdout)
    # The stalls the workload injected, as it measured them itself.
    w.injected_ms = [gp_json(l)["injected_ms"] for l in w.proc.stdout.read().splitlines()
                     if "injected_ms" in l]
    return w, doc, {l["tid"]: l for l in doc["loops"]}


def check_timer_lag(loop):
    # Its timers, read from its heap: the workload's 50 ms ticker falls due
    # early in every stall and runs when it ends, 250-300 ms late.
    assert loop["timer_lag_source"] == "timers", loop["timers_unavailable"]
    assert 200 <= loop["timer_lag_max_ms"] <= loop["stall_max_ms"] + 20, (
        loop["timers"], loop["timer_lag_max_ms"], loop["stall_max_ms"])
    assert loop["timers"]["late"] >= 1 and loop["timer_lag_mean_ms"] > 0, loop


def check_injected_stalls(loop, seconds, injected_ms, timers=True):
    injected = seconds / PERIOD_S
    assert abs(loop["stall_count"] - injected) <= 1, loop
    # A stall cut by the start or the end of the run is shorter; every
    # other one lasts the injected 300 ms (plus the sample period).
    inner = loop["stalls"][1:-1] if len(loop["stalls"]) > 2 else loop["stalls"]
    for s in inner:
        assert 250 <= s["ms"] <= 400, loop["stalls"]
    assert loop["stall_max_ms"] <= 400
    if timers:
        check_timer_lag(loop)
    else:  # uvloop: its timers live in libuv, not read; lag from the stalls
        assert loop["timer_lag_source"] == "stalls" and "uvloop" in loop["timers_unavailable"]
        assert loop["timer_lag_max_ms"] == loop["stall_max_ms"]
    # eBPF times each stall from the selector's exit to its next entry that
    # may block:
    # close to an injected one as the workload measured it (a stall
    # already under way when the probes attached is not reported). The
    # exact stall also holds the rest of that loop iteration and any time
    # the thread waited for one of the 2 CPUs the other test worker shares:
    # a few ms, and up to a scheduler slice or two when that worker is busy
    # (10.01 ms once in a full run), so 25 ms of slack - far from anything
    # a 300 ms stall could be mistaken for.
    exact = loop["exact"]
    assert exact is not None, loop["exact_unavailable"]
    assert exact["stall_count"] >= injected - 2, exact
    for ms in exact["stalls_ms"]:
        assert min(abs(ms - i) for i in injected_ms) <= 25, (exact, injected_ms)


def context_of(culprit):
    """(kind, [bare function names, outermost first], task name) of what a
    culprit ran in."""
    c = culprit["context"]
    return c and (c["kind"], [f["function"].rsplit(".", 1)[-1] for f in c["frames"]], c["task"])


def test_callbacks_back_to_back_are_one_stall_in_both_modes(python):
    """Three 60 ms callbacks back to back, each scheduled by the one before:
    the loop polls its selector between them without waiting (a zero
    timeout), and what a coroutine woken meanwhile waits for is the whole
    180 ms. Both modes count one stall there, not none (each callback is
    under the 100 ms threshold) and not three: a poll that cannot block
    does not end a stall (docs/reference.md, "Event loops")."""
    # Measured again when a sampled stall is off by more than the
    # tolerance below: a sampler short of CPU under the suite's load takes
    # its ticks late (6.1 ms off once on 3.14 in a full run). Stalls
    # counted by another definition (none, or one per callback) are off by
    # 60 ms or more in every run.
    for attempt in (1, 2):
        w, doc, loops = sample_loops(python, "chain")
        loop = loops[w.info["tids"]["loop-0"]]
        exact = loop["exact"]
        sampled = [s["ms"] for s in loop["stalls"]]
        inner = sampled[1:-1] if len(sampled) > 2 else sampled
        if exact is None or not exact["stalls_ms"] or all(
                min(abs(ms - e) for e in exact["stalls_ms"]) <= loop["resolution_ms"] + 5
                for ms in inner):
            break
    assert exact is not None, loop["exact_unavailable"]
    injected = w.injected_ms
    assert injected and all(170 <= ms <= 260 for ms in injected), injected
    # Every stall is a chain (the echo clients alone never stall).
    sampled = [s["ms"] for s in loop["stalls"]]
    assert sampled and exact["stalls_ms"], (sampled, exact)
    for ms in exact["stalls_ms"]:
        assert min(abs(ms - i) for i in injected) <= 10, (exact, injected)
    # A stall cut by the start or the end of the run is shorter; the others
    # are the same stall in both modes: within a sample period, and 5 ms
    # for a sample that a loaded machine ran late.
    inner = sampled[1:-1] if len(sampled) > 2 else sampled
    tolerance = loop["resolution_ms"] + 5
    for ms in inner:
        assert min(abs(ms - e) for e in exact["stalls_ms"]) <= tolerance, (sampled, exact)
    assert abs(len(sampled) - exact["stall_count"]) <= 1, (sampled, exact)
    # each stall is run by call_soon callbacks, not by a task
    assert context_of(loop["culprits"][0]) == ("callback", ["chain_link"], None), loop["culprits"]


@TIMED
@pytest.mark.parametrize("pure", [False, True], ids=["c-tasks", "pure-python-tasks"])
def test_cpu_bound_stall_and_its_culprit(python_alone, pure):
    python = python_alone
    # One measurement again when the culprit's share falls short: under the
    # suite's load the sampler's ticks come late and cluster (74.6% once on
    # 3.12 with pure-Python tasks in a fresh CI run; 97-100% alone). A
    # stall blamed on the wrong line is wrong both times.
    for attempt in (1, 2):
        w, doc, loops = sample_loops(python, "cpu", *(["--pure"] if pure else []))
        loop = loops[w.info["tids"]["loop-0"]]
        if loop["culprits"] and loop["culprits"][0]["share_pct"] >= 90:
            break
    check_injected_stalls(loop, doc["run"]["duration_s"], w.injected_ms)
    culprit = loop["culprits"][0]
    assert (culprit["function"], culprit["line"]) == ("burn_cpu", MARKS["cpu_stall"]), culprit
    assert culprit["on_cpu"] is True and culprit["share_pct"] >= 90, culprit
    # run by the task of cpu_injector (a C or a pure-Python Task alike)
    assert context_of(culprit) == ("task", ["cpu_injector"], "cpu-injector"), culprit
    assert loop["source"] == "sampled" and loop["resolution_ms"] < 2
    top = doc["findings"][0]
    assert top["scenario"] == "S1" and "burn_cpu (" in top["culprit"], doc["findings"]
    assert 'in task "cpu-injector": cpu_injector (' in top["culprit"], top
    # No wait_for or timeout anywhere: late timers, but no S7 above info.
    assert loop["timers"]["timeouts"]["seen"] == 0, loop["timers"]
    assert [f["severity"] for f in doc["findings"] if f["scenario"] == "S7"] in ([], ["info"])


@TIMED
def test_uvloop_loop(python_debian):
    """uvloop (Debian's python3-uvloop, for its python3.11) runs no Python
    frame of its own: its loop is recognised all the same."""
    w, doc, loops = sample_loops(python_debian, "cpu", "--uvloop")
    loop = loops[w.info["tids"]["loop-0"]]
    check_injected_stalls(loop, doc["run"]["duration_s"], w.injected_ms, timers=False)
    culprit = loop["culprits"][0]
    assert (culprit["function"], culprit["line"]) == ("burn_cpu", MARKS["cpu_stall"]), culprit
    assert culprit["on_cpu"] is True
    # uvloop's loop runs no Python frame to tell a task step from a callback
    assert culprit["context"] is None, culprit


@TIMED
def test_blocking_call_inside_a_coroutine(python_alone):
    python = python_alone
    w, doc, loops = sample_loops(python, "sleep")
    loop = loops[w.info["tids"]["loop-0"]]
    check_injected_stalls(loop, doc["run"]["duration_s"], w.injected_ms)
    culprit = loop["culprits"][0]
    assert (culprit["function"], culprit["line"]) == ("sleep_injector", MARKS["sleep_stall"])
    assert culprit["on_cpu"] is False and culprit["syscall"] in SLEEP_SYSCALLS, culprit
    assert context_of(culprit) == ("task", ["sleep_injector"], "sleep-injector"), culprit
    top = doc["findings"][0]
    assert top["scenario"] == "S3" and "sleep_injector (" in top["culprit"], doc["findings"]


def test_healthy_loop_has_no_stall(python):
    w, doc, loops = sample_loops(python, "healthy", seconds=2)
    loop = loops[w.info["tids"]["loop-0"]]
    assert loop["stall_count"] == 0, loop
    assert loop["idle_pct"] > 50, loop
    assert [f for f in doc["findings"] if f["severity"] != "info"] == []


@TIMED
def test_loop_waiting_for_a_cpu_is_still_in_its_selector(python_debian):
    """Four CPU hogs on this 2-core machine: the loop thread, woken from
    epoll_wait, often waits for a CPU before it returns to Python. It is
    still in its selector then (the eBPF reader sees it off CPU inside the
    syscall), not busy. How busy the loop looks depends on how many CPUs
    the rest of the machine leaves it (12-18% alone, 53% once while the
    other test worker ran a CPU-heavy test beside the hogs), so the eBPF
    reader is compared with --no-bpf (which has to count that wait as
    busy) watching the same loop at the same time, under the same load:
    measured 12-18% against 43-45% alone."""
    hogs = [subprocess.Popen([python_debian, "-c", "while True: pass"]) for _ in range(4)]
    w = Workload(python_debian, "asyncio_loop.py", ["healthy"])
    try:
        cmd = ["-p", str(w.pid), "-d", "3", "--json"]
        without = subprocess.Popen([GILPROBE] + cmd + ["--no-bpf"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        r = run_gilprobe(cmd, timeout=60)
        out, err = without.communicate(timeout=60)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        w.stop()
    assert r.returncode == 0 and without.returncode == 0, (r.stderr, err)
    tid = w.info["tids"]["loop-0"]
    loop = {l["tid"]: l for l in gp_json(r.stdout)["loops"]}[tid]
    blind = {l["tid"]: l for l in gp_json(out)["loops"]}[tid]
    assert loop["exact"] is not None and blind["exact"] is None, (loop, blind)
    assert loop["busy_pct"] < 0.7 * blind["busy_pct"], (loop, blind)
    # Under this load (and the suite's) a callback can itself wait 100 ms
    # for a CPU: one short stall once in a full run (104 ms, in a write).
    # The selector's waits never count.
    assert loop["stall_count"] <= 1 and (loop["stall_max_ms"] or 0) < 150, loop
    if loop["stall_count"] == 0:
        findings = gp_json(r.stdout)["findings"]
        assert [f for f in findings if f["severity"] != "info"] == [], findings


def test_timeouts_expired_by_a_callback_stall_are_s7(python):
    """Eight tasks loop over wait_for(sleep(0.01), timeout=0.12); a
    call_later callback burns 300 ms every second. Most of the eight have a
    timeout pending when a stall begins, and its deadline falls inside the
    stall: each stall makes some expire (at most eight), and S7, observed,
    leads the report with the callback as culprit."""
    w, doc, loops = sample_loops(python, "timeouts")
    loop = loops[w.info["tids"]["loop-0"]]
    check_injected_stalls(loop, doc["run"]["duration_s"], w.injected_ms)
    t = loop["timers"]["timeouts"]
    assert 1 <= t["pending_max"] <= 8, t
    stalls = loop["stall_count"]
    assert max(1, stalls - 1) <= t["expired_in_stalls"] <= 8 * stalls, (t, stalls)
    assert t["expired_in_stalls"] <= t["expired"] <= t["seen"], t
    culprit = loop["culprits"][0]
    assert (culprit["function"], culprit["line"]) == ("stalling_callback", MARKS["callback_stall"])
    assert culprit["timeouts_expired"] >= 1, culprit
    assert context_of(culprit)[:2] == ("callback", ["stalling_callback"]), culprit
    top = doc["findings"][0]
    assert (top["scenario"], top["severity"]) == ("S7", "critical"), doc["findings"]
    assert "stalling_callback (" in top["culprit"] and "in callback" in top["culprit"], top
    evidence = {e["metric"]: e["value"] for e in top["evidence"]}
    assert evidence["loop.timeouts_expired_in_stalls"] == t["expired_in_stalls"], top
    # the stalls themselves are still S1
    assert "S1" in [f["scenario"] for f in doc["findings"]], doc["findings"]


def test_tasks_that_pile_up_are_a_finding_naming_their_coroutine(python):
    """A task that never finishes is started every 10 ms: the count grows
    by up to 100 a second (fewer when the loop runs late), steadily, and
    the finding names the coroutine they run."""
    w, doc, loops = sample_loops(python, "leak", seconds=5)
    tasks = loops[w.info["tids"]["loop-0"]]["tasks"]
    minor = int(w.info["version"].split(".")[1])
    assert tasks["scope"] == ("thread" if minor >= 14 else "process"), tasks
    assert tasks["growing"] and 50 <= tasks["growth_per_s"] <= 105, tasks
    assert tasks["fit_r2"] >= 0.9 and tasks["last"] - tasks["first"] >= 200, tasks
    top = tasks["by_coroutine"][0]
    assert (top["function"], top["line"]) == ("hang", MARKS["hang"] - 2), tasks["by_coroutine"]
    assert top["count"] >= 0.9 * tasks["last"] - 10, tasks
    found = [f for f in doc["findings"] if f["scenario"] == "tasks"]
    assert len(found) == 1 and "hang (" in found[0]["culprit"], doc["findings"]
    evidence = {e["metric"]: e["value"] for e in found[0]["evidence"]}
    assert evidence["loop.tasks_growth_per_s"] == tasks["growth_per_s"], found


def test_a_steady_task_count_is_not_growth(python):
    """The echo clients and the ticker: the same tasks for ever."""
    w, doc, loops = sample_loops(python, "timeouts", seconds=4)
    tasks = loops[w.info["tids"]["loop-0"]]["tasks"]
    # (before 3.14 the registry also holds wait_for's finished inner tasks
    # until they are freed: the count wavers by a few)
    assert not tasks["growing"] and abs(tasks["growth_per_s"]) < 5, tasks
    # the eight waiters, the two clients, the ticker, the server's two echo
    # handlers and the main task (14), and wait_for's inner tasks (<= 3.11)
    assert 12 <= tasks["max"] <= 24 and len(tasks["series"]) >= 3, tasks
    assert "tasks" not in [f["scenario"] for f in doc["findings"]], doc["findings"]


def test_idle_loop_is_idle_not_stalled(python):
    w, doc, loops = sample_loops(python, "idle", seconds=1.5)
    loop = loops[w.info["tids"]["loop-0"]]
    assert loop["stall_count"] == 0 and loop["busy_pct"] < 5, loop


def test_two_loops_are_reported_separately(python):
    w, doc, loops = sample_loops(python, "cpu", "--threads", "2")
    first, second = w.info["tids"]["loop-0"], w.info["tids"]["loop-1"]
    assert set(loops) == {first, second}
    assert loops[first]["culprits"][0]["function"] == "burn_cpu"
    assert all(c["function"] != "burn_cpu" for c in loops[second]["culprits"])
    # each loop's running task is its own, with two loops in the process
    # (before 3.14 the thread's loop is told by its _run_once frame)
    assert context_of(loops[first]["culprits"][0]) == ("task", ["cpu_injector"], "cpu-injector")
    assert all(l["timer_lag_source"] == "timers" for l in loops.values()), loops


def test_stall_threshold_option_and_no_bpf(python):
    w = Workload(python, "asyncio_loop.py", ["cpu"])
    try:
        r = run_gilprobe(["-p", str(w.pid), "-d", "1.5", "--stall-ms", "500", "--json"])
        r2 = run_gilprobe(["-p", str(w.pid), "-d", "1.5", "--no-bpf", "--json"])
        r3 = run_gilprobe(["-p", str(w.pid), "-d", "1.5", "--no-asyncio", "--json"])
    finally:
        w.stop()
    # --no-asyncio: stalls and their frames, nothing read of asyncio's own
    loop = gp_json(r3.stdout)["loops"][0]
    assert loop["stall_count"] >= 1 and loop["culprits"][0]["function"] == "burn_cpu", loop
    assert loop["timers"] is None and loop["tasks"] is None and loop["timer_lag_source"] == "stalls"
    assert loop["culprits"][0]["context"]["task"] is None, loop["culprits"][0]
    loop = gp_json(r.stdout)["loops"][0]
    assert loop["stall_threshold_ms"] == 500 and loop["stall_count"] == 0, loop
    assert loop["exact"]["stall_count"] == 0
    loop = gp_json(r2.stdout)["loops"][0]
    assert loop["exact"] is None and "--no-bpf" in loop["exact_unavailable"]
    assert loop["stall_count"] >= 1  # the sampler alone still sees them
