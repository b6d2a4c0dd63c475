"""`gilprobe run -- COMMAND`, --fail-on, --junit and GitHub annotations.

The workload (tests/workloads/run_app.py) does known things: its first
instruction enters early_work(); `threads` keeps 4 CPU-bound threads busy;
`child` starts a Python child; it prints known lines and exits with the
code it is given."""
import json
import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import (gp_json, GILPROBE, INTERPRETERS, WORKLOADS, Workload, interpreter_params,
                      marks)

APP = os.path.join(WORKLOADS, "run_app.py")
MARKS = marks("run_app.py")
CHILD_MARKS = marks("run_child.py")
EXIT_CHECK_FAILED = 9


def run(python, mode, *gilprobe_args, code=None, env=None, timeout=120):
    cmd = [GILPROBE, "run"] + list(gilprobe_args) + ["--", python, APP, mode]
    if code is not None:
        cmd.append(str(code))
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)


def functions_seen(doc):
    seen = set()
    for t in doc["threads"]:
        for stacks in t["top_stacks"].values():
            for s in stacks:
                seen.update((f["function"], f["line"]) for f in s["frames"])
    return seen


@pytest.mark.parametrize("python", interpreter_params())
def test_run_profiles_from_the_first_instruction_and_keeps_the_exit_code(python, tmp_path):
    out = tmp_path / "r.json"
    r = run(python, "early", "--json", "-o", str(out), code=3)
    assert r.returncode == 3, r.stderr
    # stdout is the program's own, untouched.
    assert r.stdout == "out: early\nout: done\n"
    doc = gp_json(out.read_text())
    assert doc["command"] == "run"
    assert doc["run"]["process_exited"] and not doc["run"]["interrupted"]
    # early_work() is the program's first call and lasts 0.4 s: a profiler
    # attached from the first instruction sees it in most of those samples.
    assert ("early_work", MARKS["early"]) in functions_seen(doc)
    main = [t for t in doc["threads"] if t["tid"] == doc["pid"]][0]
    early = sum(s["samples"] for s in main["top_stacks"].get("gil_held", [])
                if s["frames"] and s["frames"][0]["function"] == "early_work")
    assert early >= 0.5 * 0.4 * doc["samples"]["rate_hz"], main["top_stacks"]


@pytest.mark.parametrize("python", interpreter_params())
def test_figures_of_a_program_that_exited_are_the_last_seen(python, tmp_path):
    """The program exits before gilprobe reads the end of the run: its RSS
    is the last one read while it lived (it held 48 MiB for 3 s), not a
    read of a process that is gone (0, and a made-up shrink rate)."""
    out = tmp_path / "r.json"
    r = run(python, "memory", "--json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = gp_json(out.read_text())
    assert doc["run"]["process_exited"]
    mem = doc["system"]["memory"]
    assert mem["rss_end_kb"] >= 48 * 1024, mem
    assert mem["rss_growth_kb_per_s"] > 0, mem


def test_run_exit_code_zero_and_report_on_stderr():
    python = INTERPRETERS[0][1]
    r = run(python, "early", code=0)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "out: early\nout: done\n"
    assert "GIL (sampled" in r.stderr and "Threads" in r.stderr


def test_the_program_gets_gilprobes_signal_mask_and_its_children_are_reaped():
    """gilprobe blocks SIGCHLD while it learns the program's PID; the program
    must not inherit that (a blocked SIGCHLD hung multiprocessing's
    forkserver in CPython's test_concurrent_futures). The program prints
    its blocked signals, then a forkserver pool runs a task."""
    python = INTERPRETERS[0][1]
    code = ("import signal, multiprocessing as mp\n"
            "print(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))\n"
            "if __name__ == '__main__':\n"
            "    with mp.get_context('forkserver').Pool(1) as pool:\n"
            "        print(pool.apply(abs, (-7,)))\n")
    r = subprocess.run([GILPROBE, "run", "-d", "20", "--", python, "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:1] == ["[]"], r.stdout
    assert r.stdout.splitlines()[-1] == "7", r.stdout


def test_run_killed_program_gives_128_plus_signal(tmp_path):
    python = INTERPRETERS[0][1]
    p = subprocess.Popen([GILPROBE, "run", "--", python, APP, "sleep"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "out: sleep\n"
    assert p.stdout.readline() == "ready\n"
    child = int(open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()[0])
    time.sleep(0.3)
    os.kill(child, signal.SIGKILL)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGKILL, err
    assert "the process exited" in err


def test_sigterm_to_gilprobe_is_passed_on_and_the_report_still_printed():
    python = INTERPRETERS[0][1]
    p = subprocess.Popen([GILPROBE, "run", "--json", "--", python, APP, "sleep"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "out: sleep\n"
    assert p.stdout.readline() == "ready\n"
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM  # the program died of it
    doc = gp_json(err[err.index("{"):])
    assert ("sleep_forever", MARKS["sleep"]) in functions_seen(doc)


@pytest.mark.xdist_group("cpu-heavy")
def test_fail_on_trips_with_the_documented_code_and_names_the_expression(tmp_path):
    python = dict(INTERPRETERS).get("pyenv-3.12", INTERPRETERS[0][1])
    junit = tmp_path / "checks.xml"
    out = tmp_path / "r.json"
    r = run(python, "threads", "--json", "-o", str(out), "--junit", str(junit),
            "--fail-on", "gil.held_pct>80",            # 4 CPU-bound threads: ~100%
            "--fail-on", "thread.max_gil_wait_pct > 30",  # each waits ~75%
            "--fail-on", "loop.stall_max_ms>100",       # no event loop: passes
            "--fail-on", "scenario=S5",                 # no lock waits: passes
            "--fail-on", "finding>=warning",            # contention: S2 or S6
            code=0, env={"GITHUB_ACTIONS": "true"})
    assert r.returncode == EXIT_CHECK_FAILED, r.stderr
    assert r.stdout == "out: threads\nout: done\n"
    lines = r.stderr.splitlines()
    failed = [ln for ln in lines if ln.startswith("gilprobe: check failed: ")]
    assert len(failed) == 3, r.stderr
    assert any(ln.startswith("gilprobe: check failed: gil.held_pct>80 (measured ") for ln in failed)
    measured = float([ln for ln in failed if "gil.held_pct" in ln][0].split("measured ")[1]
                     .split()[0].rstrip(")"))
    assert measured > 80
    assert "gilprobe: 5 checks, 2 passed, 3 failed" in lines
    assert sum(ln.startswith("::error title=gilprobe check failed::") for ln in lines) == 3

    doc = gp_json(out.read_text())
    results = {c["expr"]: c["result"] for c in doc["checks"]}
    assert results == {"gil.held_pct>80": "failed", "thread.max_gil_wait_pct>30": "failed",
                       "loop.stall_max_ms>100": "passed", "scenario=S5": "passed",
                       "finding>=warning": "failed"}

    suites = ET.parse(junit).getroot()
    assert suites.tag == "testsuites"
    cases = suites.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == list(results)
    for case in cases:
        failure = case.find("failure")
        assert (failure is not None) == (results[case.get("name")] == "failed")
        if failure is not None:
            assert "measured" in failure.get("message")
    suite = suites.find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("5", "3")


def test_passing_checks_keep_the_programs_exit_code(tmp_path):
    python = INTERPRETERS[0][1]
    junit = tmp_path / "ok.xml"
    r = run(python, "early", "--fail-on", "lock.count>0", "--fail-on", "scenario!=S1",
            "--junit", str(junit), code=4)
    # scenario!=S1 fails when no S1 finding is made: the check trips.
    assert r.returncode == EXIT_CHECK_FAILED, r.stderr
    r = run(python, "early", "--fail-on", "lock.count>0", "--junit", str(junit), code=4)
    assert r.returncode == 4, r.stderr
    case = ET.parse(junit).getroot().find("./testsuite/testcase")
    assert case.get("name") == "lock.count>0" and case.find("failure") is None


def test_not_measured_metric_fails_the_check_as_an_error(tmp_path):
    python = INTERPRETERS[0][1]
    junit = tmp_path / "e.xml"
    # --no-bpf: no exact GIL hold times, so the check cannot be decided.
    r = run(python, "early", "--no-bpf", "--fail-on", "gil.hold_p99_ms>5", "--junit", str(junit))
    assert r.returncode == EXIT_CHECK_FAILED, r.stderr
    assert "gil.hold_p99_ms>5: not measured in this run" in r.stderr
    assert ET.parse(junit).getroot().find("./testsuite/testcase/error") is not None


@pytest.mark.parametrize("expr,message", [
    ("gil.bogus>1", "unknown metric 'gil.bogus'; valid metrics: gil.held_pct"),
    ("gil.held_pct", "is not METRIC OP VALUE"),
    ("gil.held_pct>abc", "'abc' is not a number"),
    ("finding>=severe", "none, info, warning or critical"),
    ("scenario>S2", "scenario takes = or !="),
    ("scenario=S9", "scenarios are S1 to S8"),
    ("thread[].x>1", "empty thread selector '[]'"),
    ("thread[spin.gil_wait_pct>1", "'thread[' is never closed with ']'"),
    ("thread[name~=(].gil_wait_pct>1", "'(' is not a POSIX extended regular expression"),
    ("thread[spin].gil_wait>1", "unknown per-thread metric 'gil_wait'"),
])
def test_bad_expression_is_a_usage_error(expr, message):
    r = subprocess.run([GILPROBE, "run", "--fail-on", expr, "--", "true"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2
    assert message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    if "unknown metric" in message:
        for name in ("thread.max_gil_wait_pct", "loop.stall_max_ms", "gil.wait_p99_ms",
                     "finding", "scenario"):
            assert name in r.stderr
    if expr.startswith("thread["):  # every per-thread error lists the per-thread metrics
        for name in ("gil_wait_pct", "cpu_pct", "gil_wait_p99_ms", "gil_hold_max_ms",
                     "gil_wait_caused_ms"):
            assert name in r.stderr


def test_run_usage_errors():
    r = subprocess.run([GILPROBE, "run"], capture_output=True, text=True)
    assert r.returncode == 2 and "run needs a command" in r.stderr
    r = subprocess.run([GILPROBE, "run", "-p", "1", "--", "true"], capture_output=True, text=True)
    assert r.returncode == 2 and "drop -p" in r.stderr
    r = subprocess.run([GILPROBE, "run", "--junit", "x.xml", "--", "true"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--junit reports --fail-on checks" in r.stderr
    r = subprocess.run([GILPROBE, "run", "--", "/nonexistent/prog"], capture_output=True, text=True)
    assert r.returncode == 127 and "cannot run '/nonexistent/prog'" in r.stderr
    r = subprocess.run([GILPROBE, "run", "--", "true"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 5 and "exited before it ran Python" in r.stderr


def test_program_exiting_during_the_attach_is_never_reported_as_missing():
    # A program that exits at once can be a zombie (gone to /proc) before
    # gilprobe has handled its SIGCHLD; that is "never ran Python" (5), not
    # "no such process" (3). Seen once in CI; many short runs widen the net.
    codes = {}
    for _ in range(100):
        r = subprocess.run([GILPROBE, "run", "--", "true"], capture_output=True, text=True,
                           timeout=30)
        codes[r.returncode] = r.stderr
    assert list(codes) == [5], codes


def test_run_follows_python_children_with_subprocesses(tmp_path):
    python = INTERPRETERS[0][1]
    out = tmp_path / "r.json"
    r = run(python, "child", "--subprocesses", "--json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = gp_json(out.read_text())
    assert len(doc["subprocesses"]) == 1, doc["subprocesses"]
    child = doc["subprocesses"][0]
    assert child["pid"] != doc["pid"]
    assert ("child_work", CHILD_MARKS["child"]) in functions_seen(child)


def test_fail_on_works_with_p_too():
    python = INTERPRETERS[0][1]
    w = subprocess.Popen([python, APP, "sleep"], stdout=subprocess.PIPE, text=True)
    try:
        assert w.stdout.readline() == "out: sleep\n"
        assert w.stdout.readline() == "ready\n"
        r = subprocess.run([GILPROBE, "-p", str(w.pid), "-d", "1", "--fail-on",
                            "thread.max_gil_wait_pct>30", "--fail-on", "samples.taken<10"],
                           capture_output=True, text=True, timeout=60)
        # A sleeping program: no GIL wait, plenty of samples: both pass.
        assert r.returncode == 0, r.stderr
        assert "gilprobe: 2 checks, 2 passed, 0 failed" in r.stderr
        r = subprocess.run([GILPROBE, "-p", str(w.pid), "-d", "1", "--fail-on",
                            "thread.max_gil_wait_pct<30"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == EXIT_CHECK_FAILED, r.stderr
    finally:
        w.kill()
        w.wait()


@pytest.mark.xdist_group("cpu-heavy")
def test_fail_on_thread_selectors_pick_threads_by_name_tid_and_regex(tmp_path):
    # contention.py cpu4: 4 spinning threads, OS names spin-0..3 (prctl),
    # Python names "Thread-N (spin)" (3.10+); the main thread sleeps.
    python = dict(INTERPRETERS).get("debian-3.11", INTERPRETERS[0][1])
    w = Workload(python, "contention.py", ["cpu4"])
    try:
        spin0 = w.info["tids"]["spin-0"]
        out = tmp_path / "r.json"
        r = subprocess.run([GILPROBE, "-p", str(w.pid), "-d", "1", "--json", "-o", str(out),
                            "--fail-on", "thread[name~=spin].gil_held_pct>1",
                            "--fail-on", "thread[%d].gil_wait_pct >= 30" % spin0,
                            "--fail-on", "thread[MainThread].gil_wait_pct>30",
                            # the Python name is matched when there is one, not the OS name
                            "--fail-on", "thread[name~=^spin].gil_held_pct>1",
                            "--fail-on", "thread[nosuchthread].gil_wait_pct>1"],
                           capture_output=True, text=True, timeout=60)
    finally:
        w.stop()
    assert r.returncode == EXIT_CHECK_FAILED, r.stderr
    checks = {c["expr"]: c for c in gp_json(out.read_text())["checks"]}
    assert {e: c["result"] for e, c in checks.items()} == {
        "thread[name~=spin].gil_held_pct>1": "failed",
        "thread[%d].gil_wait_pct>=30" % spin0: "failed",
        "thread[MainThread].gil_wait_pct>30": "passed",
        "thread[name~=^spin].gil_held_pct>1": "not_measured",
        "thread[nosuchthread].gil_wait_pct>1": "not_measured"}, r.stderr
    # the value is the thread that decided: one of the spinners, the busiest
    measured = checks["thread[name~=spin].gil_held_pct>1"]["measured"]
    tid = int(measured.split("(thread ")[1].split()[0])
    assert tid in w.info["tids"].values() and "the highest of 4 threads" in measured, measured
    assert (checks["thread[name~=spin].gil_held_pct>1"]["metric"]
            == "thread[name~=spin].gil_held_pct")
    assert ('(thread %d "' % spin0) in checks["thread[%d].gil_wait_pct>=30" % spin0]["measured"]
    assert ("gilprobe: check failed: thread[nosuchthread].gil_wait_pct>1: not measured in this "
            "run: no thread matched the selector [nosuchthread]") in r.stderr.splitlines()
    assert "gilprobe: 5 checks, 1 passed, 4 failed" in r.stderr

    r = subprocess.run([GILPROBE, "-p", "1", "--fail-on", "thread[].x>1"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "empty thread selector" in r.stderr and "gil_wait_p99_ms" in r.stderr
