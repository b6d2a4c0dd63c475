"""Every example of examples/ on every interpreter: each scenario workload's
top finding is its scenario, naming the right culprit; each negative
control has no finding at warning level or above. The same again with the
target held to half a CPU: the findings must not depend on how fast the
machine or the interpreter is (on the oldest and newest interpreters and
the two stripped distribution builds: the suite's time limit does not
allow the whole matrix twice)."""
import os
import re
import subprocess
import time

import pytest
from conftest import EXAMPLES, Example, gp_json, INTERPRETERS, interpreter_params, run_gilprobe

CPU_HEAVY = pytest.mark.xdist_group("cpu-heavy")


def findings(python, name, seconds=2.5, extra=(), args=(), prefix=()):
    ex = Example(python, name, args, prefix)
    try:
        time.sleep(0.3)
        r = run_gilprobe(["-p", str(ex.pid), "-d", str(seconds), "--json"] + list(extra),
                         timeout=60)
    finally:
        ex.stop()
    assert r.returncode == 0, r.stderr
    return gp_json(r.stdout)["findings"]


# (test id, example, its arguments, scenario, text in the culprit)
SCENARIOS = [
    ("s1_cpu_in_event_loop", "s1_cpu_in_event_loop", (), "S1", "resize_image ("),
    # 30 ms stalls, under a third of the 100 ms stall threshold (room for a
    # preempted one on a loaded machine), the loop busy ~75%
    ("s1_saturated_below_stall_threshold", "s1_cpu_in_event_loop",
     ("--stall-ms", "30", "--pause-ms", "10"), "S1", "resize_image ("),
    ("s2_gil_thrashing", "s2_gil_thrashing", (), "S2", "score_batch ("),
    ("s3_blocking_call_in_coroutine", "s3_blocking_call_in_coroutine", (), "S3", "fetch_profile ("),
    ("s5_lock_contention", "s5_lock_contention", (), "S5", "save_order ("),
    ("s7_late_timeouts", "s7_late_timeouts", (), "S7", "report"),
    ("s8_many_threads", "s8_many_threads", (), "S8", "threads"),
]
CONTROLS = ["ok_io_threads", "ok_one_cpu_thread", "ok_healthy_asyncio"]


# The half-CPU runs: the slowest interpreter (3.8), the newest (3.15), and
# Debian's stripped 3.11 and 3.14 (found by section, exact timing by the
# fallback), each on its own worker group.
HALF_CPU_PYTHONS = [p for p in interpreter_params()
                    if p.id in ("pyenv-3.8", "debian-3.11", "unstable-3.14", "unstable-3.15")]


def check_top_finding(found, name, scenario, culprit):
    assert found, "no finding for %s" % name
    top = found[0]
    assert top["scenario"] == scenario, found
    assert top["severity"] in ("warning", "critical"), top
    assert culprit in top["culprit"], top
    return top


@pytest.mark.parametrize("test_id,name,args,scenario,culprit", SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_scenario_example(python, test_id, name, args, scenario, culprit):
    top = check_top_finding(findings(python, name, args=args), name, scenario, culprit)
    if test_id == "s1_saturated_below_stall_threshold":
        # No stall: the loop is saturated, which is a finding of its own.
        # On a loaded machine a 30 ms stretch preempted for 70 ms more is a
        # real 100 ms stall the loop lived through (seen once in a full
        # run): then the stall finding, with that stall as its evidence.
        evidence = {e["metric"]: e["value"] for e in top["evidence"]}
        if "saturates" in top["title"]:
            assert evidence["loop.busy_pct"] >= 50, top
        else:
            assert "blocks the asyncio event loop" in top["title"], top
            assert evidence["loop.stall_max_ms"] >= 100, top


@pytest.mark.parametrize("name", CONTROLS)
def test_negative_control(python, name):
    found = findings(python, name, seconds=1.5)
    assert [f for f in found if f["severity"] != "info"] == [], found


@pytest.mark.parametrize("python", HALF_CPU_PYTHONS)
@pytest.mark.parametrize("test_id,name,args,scenario,culprit", SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_scenario_example_on_half_a_cpu(python, half_cpu, test_id, name, args, scenario, culprit):
    """The target gets half a CPU (a cgroup quota): it runs about half as
    fast, and the workloads, sized by time, still show their scenario. The
    30 ms stalls may stretch past the threshold when the quota runs out in
    one; S1 either way."""
    check_top_finding(findings(python, name, args=args, prefix=half_cpu.prefix), name, scenario,
                      culprit)


@pytest.mark.parametrize("python", HALF_CPU_PYTHONS)
def test_gil_thrashing_on_a_tenth_of_a_cpu(python, tenth_cpu):
    """S2's own story: the same eight fighting threads on an oversubscribed
    machine (a tenth of a CPU). The GIL changes hands about 20 times a
    second of wall time (under the 50/s the rule asks for), about 200 times
    per second of the CPU the process got: still S2, on that evidence."""
    ex = Example(python, "s2_gil_thrashing", (), tenth_cpu.prefix)
    try:
        time.sleep(0.3)
        r = run_gilprobe(["-p", str(ex.pid), "-d", "3", "--json"], timeout=60)
    finally:
        ex.stop()
    assert r.returncode == 0, r.stderr
    doc = gp_json(r.stdout)
    gil = doc["gil"]
    assert gil["handoffs_per_s"] < 50, gil  # the wall-time rate alone would miss it
    assert gil["handoffs_per_cpu_s"] >= 50, gil
    cpu = sum(t["cpu_pct"] or 0 for t in doc["threads"])
    assert 3 <= cpu <= 15, cpu  # the quota held: about a tenth of a CPU
    found = doc["findings"]
    check_top_finding(found, "s2_gil_thrashing", "S2", "score_batch (")
    metrics = [e["metric"] for e in found[0]["evidence"]]
    assert "gil.handoffs_per_cpu_s" in metrics, found[0]
    assert "of one CPU" in found[0]["verdict"], found[0]


@pytest.mark.parametrize("python", HALF_CPU_PYTHONS)
@pytest.mark.parametrize("name", CONTROLS)
def test_negative_control_on_half_a_cpu(python, half_cpu, name):
    found = findings(python, name, seconds=1.5, prefix=half_cpu.prefix)
    assert [f for f in found if f["severity"] != "info"] == [], found


ALL = [pytest.param(p, id=label) for label, p in INTERPRETERS]

# --native refuses a target in another root (the chroot's 3.14 and 3.15).
SAME_ROOT = [p for p in interpreter_params() if not p.id.startswith("unstable-")]


@pytest.mark.parametrize("python", SAME_ROOT)
def test_native_stacks_keep_the_diagnoses(python):
    """With --native, C frames sit above every Python stack: a loop waiting
    in epoll_wait is still idle in its selector (no false stall), and a
    culprit is still the Python line, with the C function it was in."""
    # Measured again after a finding: under the suite's load, a loop woken
    # from epoll_wait can wait over 100 ms for a CPU (an S1 "in epoll_wait,
    # on CPU" once in a full run on 3.8). A false stall in every run is a bug.
    for attempt in (1, 2):
        found = findings(python, "ok_healthy_asyncio", seconds=1.5, extra=["--native"])
        if not [f for f in found if f["severity"] != "info"]:
            break
    assert [f for f in found if f["severity"] != "info"] == [], found
    for name, scenario, culprit in (("s3_blocking_call_in_coroutine", "S3", "fetch_profile ("),
                                    ("s5_lock_contention", "S5", "save_order (")):
        found = findings(python, name, extra=["--native"])
        assert found and found[0]["scenario"] == scenario, found
        assert culprit in found[0]["culprit"] and ", in C: " in found[0]["culprit"], found[0]


@CPU_HEAVY
@pytest.mark.parametrize("python_alone", ALL)
def test_process_explosion_example(python_alone):
    found = findings(python_alone, "s4_process_explosion", seconds=3)
    assert found and found[0]["scenario"] == "S4", found


# S6 on two interpreters: four CPU-bound processes on this 2-core machine
# are what the other tests' timing suffers from most.
TWO = [pytest.param(p, id=label) for label, p in (INTERPRETERS[0], INTERPRETERS[-1])]


@CPU_HEAVY
@pytest.mark.parametrize("python_alone", TWO)
def test_too_many_workers_example(python_alone):
    found = findings(python_alone, "s6_too_many_workers", seconds=3)
    assert found and found[0]["scenario"] == "S6", found


@CPU_HEAVY
@pytest.mark.parametrize("python_alone", ALL)
def test_process_pool_control(python_alone):
    found = findings(python_alone, "ok_process_pool", seconds=2)
    assert [f for f in found if f["severity"] != "info"] == [], found


@CPU_HEAVY
@pytest.mark.parametrize("python", [p for label, p in INTERPRETERS
                                    if label in ("pyenv-3.8", "pyenv-3.12", "debian-3.11")])
def test_ci_example_pytest_check_passes_and_catches_the_bad_variant(python):
    """examples/ci/test_contention.py as a user would run it: the healthy
    service passes its checks, the --bad one trips loop.stall_max_ms."""
    from conftest import GILPROBE
    env = dict(os.environ, GILPROBE=GILPROBE, PYTHON=python)
    r = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        os.path.join(EXAMPLES, "ci", "test_contention.py")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed" in r.stdout


def test_ci_example_workflow_runs_the_checks_with_junit():
    import yaml
    with open(os.path.join(EXAMPLES, "ci", "github-actions.yml")) as f:
        wf = yaml.safe_load(f)
    steps = wf["jobs"]["gil-contention"]["steps"]
    check = [s for s in steps if s.get("name") == "Contention check"][0]["run"]
    assert "gilprobe run" in check and "--junit gilprobe-checks.xml" in check
    assert check.count("--fail-on") >= 3 and "examples/ci/service.py" in check
    # Every metric the workflow checks is one gilprobe knows (a typo would
    # make the job fail with a usage error).
    for expr in [part.split("'")[1] for part in check.split("--fail-on ")[1:]]:
        r = run_gilprobe(["run", "--fail-on", expr, "--", "true"], timeout=30)
        assert "unknown metric" not in r.stderr and r.returncode == 5, (expr, r.stderr)
    publish = [s for s in steps if "junit" in s.get("uses", "")][0]
    assert publish["with"]["report_paths"] == "gilprobe-checks.xml"


# The pre-fork roll-up is the same code on every version; it runs on the
# oldest, Debian's stripped 3.11 and the newest (the suite's time limit:
# 12-47 s each, on the serial CPU-heavy worker).
PREFORK_PYTHONS = [p for p in ALL if p.id in ("pyenv-3.8", "debian-3.11", "unstable-3.15")]


@CPU_HEAVY
@pytest.mark.parametrize("python_alone", PREFORK_PYTHONS)
def test_prefork_server_diagnosis_covers_its_workers(python_alone):
    """The master of a pre-fork server is idle; its two workers thrash the
    GIL. With --subprocesses the bottom line is theirs: S2 in 2 of 2
    workers, first in findings[] with their PIDs, seen by --fail-on."""
    ex = Example(python_alone, "s2_prefork_server")
    try:
        with open("/proc/%d/task/%d/children" % (ex.pid, ex.pid)) as f:
            workers = sorted(int(p) for p in f.read().split())
        time.sleep(0.3)
        # --no-bpf: the roll-up is under test, not the idle master's exact
        # timing, whose eBPF programs took 15-30 s to load here under load
        # when the target runs in a session of its own (the kernel's
        # autogroups; the verifier, 0.07 s idle: noted on issue #17), so
        # that the children sampled a stretch the parent no longer covered.
        # Measured again when a run misses the workers' S2 (3.15's workers
        # were once measured at 1 hand-off/s, 3,600 samples each; the next
        # run saw S2 in both). A roll-up that never works fails twice.
        for attempt in (1, 2):
            # 4 s: each child's own gilprobe attaches before it samples,
            # which takes a good part of a second on a loaded machine.
            t0 = time.monotonic()
            r = run_gilprobe(["-p", str(ex.pid), "-d", "4", "--subprocesses", "--json",
                              "--no-bpf", "--fail-on", "scenario=S2"], timeout=60)
            t1 = time.monotonic()
            text = run_gilprobe(["-p", str(ex.pid), "-d", "3", "--subprocesses", "--no-bpf"],
                                timeout=60)
            took = (attempt, ex.ready - t0, t1 - t0, time.monotonic() - t1)
            if r.returncode == 9 and re.search(r"\(in [12] of 2 subprocesses\)", text.stdout):
                break
    finally:
        ex.stop()
    doc = gp_json(r.stdout)
    children = [(c.get("pid"), c.get("error"), (c.get("samples") or {}).get("taken"),
                 {k: (c.get("gil") or {}).get(k) for k in ("held_pct", "handoffs_per_s")},
                 [(t["name"], t["cpu_pct"], t["gil_held_pct"], t["gil_wait_pct"])
                  for t in c.get("threads") or []],
                 [f["scenario"] for f in c.get("findings") or []])
                for c in doc.get("subprocesses") or []]
    # The S2 check failed: the children's S2 counts.
    assert r.returncode == 9, (took, r.stderr, children)
    assert "check failed: scenario=S2" in r.stderr, r.stderr
    top = doc["findings"][0]
    assert top["scenario"] == "S2" and top["severity"] in ("warning", "critical"), doc["findings"]
    # Both workers thrash alike; under the suite's load one can measure
    # just under S2's 50 hand-offs a second (3.15: 47-48/s beside two CPU
    # hogs, 105-125/s alone), so the roll-up names the one or two that did.
    assert top["subprocesses"] and set(top["subprocesses"]) <= set(workers), top
    assert top["pid"] in top["subprocesses"], top
    n = len(top["subprocesses"])
    assert top["subprocesses_sampled"] == 2 and "in %d of 2 sampled subprocesses" % n in \
        top["verdict"], top
    assert "handle_request (" in top["culprit"], top
    # The text report ends with that finding, not "no known contention pattern".
    assert text.returncode == 0, text.stderr
    diagnosis = text.stdout.split("\nDiagnosis\n")[1]
    # The JSON run above holds the 2 of 2; here, the roll-up into the
    # bottom line (a child at 45 hand-offs/s fell under the threshold once
    # in a loaded full run: "in 1 of 2").
    assert "S2 GIL thrashing" in diagnosis and re.search(r"\(in [12] of 2 subprocesses\)",
                                                         diagnosis), (took, text.stdout, text.stderr)
    assert "no known contention pattern" not in diagnosis, diagnosis
