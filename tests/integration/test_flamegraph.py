"""`--collapsed`, `--speedscope` and `--state`: the sampled stacks for
flame-graph tools, checked against workloads whose threads are known to be
in given functions and states (tests/workloads/contention.py)."""
import json
import os
import re

import pytest
from conftest import gp_json, GILPROBE_ASAN, INTERPRETERS, Workload, marks, run_gilprobe

MARKS = marks("contention.py")
RATE_HZ = 1000
PERIOD_S = 1.0 / RATE_HZ
STATES = ("gil_held", "gil_wait", "lock_wait", "io_wait", "sleep", "nogil_running", "other")
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
FOLDED_LINE = re.compile(r"^[^\n]+ \d+$")
PY_FRAME = re.compile(r"(?P<function>.+) \((?P<file>[^()]+?)(?::(?P<line>\d+))?\)")


def sample_with_stacks(pid, tmp_path, *extra, binary=None, tag="all"):
    """One run: the JSON report on stdout plus both stack files."""
    folded = tmp_path / ("%s.folded" % tag)
    speedscope = tmp_path / ("%s.speedscope.json" % tag)
    r = run_gilprobe(["-p", str(pid), "-d", "1", "-r", str(RATE_HZ), "--json",
                      "--collapsed", str(folded), "--speedscope", str(speedscope)] + list(extra),
                     binary=binary)
    assert r.returncode == 0, r.stderr
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    doc = gp_json(r.stdout)
    return doc, folded.read_text(), gp_json(speedscope.read_text())


def parse_folded(text):
    """[(thread frame, state, [python frames outermost first], count)]."""
    assert text.endswith("\n")
    out = []
    for line in text[:-1].split("\n"):
        assert FOLDED_LINE.match(line), repr(line)
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        assert len(frames) >= 2 and all(frames), repr(line)
        assert re.fullmatch(r"thread .* \(\d+\)", frames[0]), frames[0]
        state = re.fullmatch(r"\[(\w+)\]", frames[1]).group(1)
        assert state in STATES
        assert int(count) > 0
        out.append((frames[0], state, frames[2:], int(count)))
    return out


def label_tid(thread_frame):
    """The TID at the end of a folded stack's thread frame."""
    return int(re.search(r"\((\d+)\)$", thread_frame).group(1))


def py_frame(text):
    m = PY_FRAME.fullmatch(text)
    assert m, text
    return m.group("function"), m.group("file"), m.group("line") and int(m.group("line"))


def check_speedscope(ss, doc, states=STATES):
    """The schema's required keys and shapes; one profile per thread that
    has samples in `states`, weighing what the report counted; returned by
    TID."""
    assert ss["$schema"] == SPEEDSCOPE_SCHEMA
    assert ss["exporter"].startswith("gilprobe ")
    assert ss["activeProfileIndex"] == 0 and isinstance(ss["name"], str)
    frames = ss["shared"]["frames"]
    assert all(isinstance(f["name"], str) and f["name"] for f in frames)
    for f in frames:
        if not f["name"].startswith("["):
            assert f["file"] and (f.get("line") is None or f["line"] > 0), f
    by_name = {}
    for p in ss["profiles"]:
        assert p["type"] == "sampled" and p["unit"] == "seconds" and p["startValue"] == 0
        assert len(p["samples"]) == len(p["weights"]) > 0
        assert p["endValue"] == pytest.approx(sum(p["weights"]), rel=1e-6)
        for s in p["samples"]:
            assert s and all(isinstance(i, int) and 0 <= i < len(frames) for i in s)
            assert frames[s[0]]["name"] in ["[%s]" % k for k in states], "state at the root"
            assert not any(frames[i]["name"].startswith("[") for i in s[1:])
        by_name[p["name"]] = p
    # A profile is named as the report shows its thread: the Python name
    # (the OS name after it when that says more), then the TID.
    expected = {}
    for t in doc["threads"]:
        if any(t["%s_pct" % k] > 0 for k in states):
            shown = [n for n in by_name if n.endswith(" (%d)" % t["tid"])]
            assert len(shown) == 1, (t, sorted(by_name))
            assert shown[0].startswith(t["python_name"] or t["name"]), (shown, t)
            expected[shown[0]] = t
    assert set(by_name) == set(expected)
    if states == STATES:
        for name, t in expected.items():
            assert sum(by_name[name]["weights"]) / PERIOD_S == pytest.approx(t["samples"], rel=1e-6)
    return {t["tid"]: by_name[name] for name, t in expected.items()}


def innermost_functions(ss, profile):
    frames = ss["shared"]["frames"]
    return {frames[s[-1]]["name"] for s in profile["samples"] if len(s) > 1}


def test_four_cpu_bound_threads_as_flame_graphs(python, tmp_path):
    w = Workload(python, "contention.py", ["cpu4"])
    try:
        w.wait_main_asleep()
        doc, folded, ss = sample_with_stacks(w.pid, tmp_path)
        wait_doc, wait_folded, wait_ss = sample_with_stacks(w.pid, tmp_path, "--state", "gil-wait",
                                                            tag="gil_wait")
    finally:
        w.stop()
    spins = {tid: name for name, tid in w.info["tids"].items()}
    taken = doc["samples"]["taken"]
    spin_lines = (MARKS["spin"], MARKS["spin"] - 1)

    lines = parse_folded(folded)
    per_thread = {}
    for thread, state, frames, count in lines:
        per_thread[label_tid(thread)] = per_thread.get(label_tid(thread), 0) + count
        # Named as the report shows the thread: its Python name first.
        t = [t for t in doc["threads"] if t["tid"] == label_tid(thread)][0]
        assert thread.startswith("thread %s" % (t["python_name"] or t["name"])), (thread, t)
    # Every sample of every thread is on exactly one line.
    assert per_thread == {t["tid"]: t["samples"] for t in doc["threads"] if t["samples"]}
    assert all(n <= taken for n in per_thread.values())
    for tid, name in spins.items():
        mine = [(s, f, n) for th, s, f, n in lines if label_tid(th) == tid]
        assert {s for s, f, n in mine} >= {"gil_held", "gil_wait"}, mine
        for state, frames, n in mine:
            # Outermost first: threading's bootstrap at the root, spin on top.
            assert frames, "a spinning thread always has Python frames"
            function, file, line = py_frame(frames[-1])
            assert function == "spin" and file.endswith("contention.py"), frames
            assert line in spin_lines, frames
            assert "_bootstrap" in py_frame(frames[0])[0], frames
    main = [(s, f) for th, s, f, n in lines if th.endswith("(%d)" % w.pid)]
    assert main and all(py_frame(f[-1])[0] == "main" for s, f in main), main

    profiles = check_speedscope(ss, doc)
    for tid, name in spins.items():
        assert innermost_functions(ss, profiles[tid]) == {"spin"}

    # --state gil-wait: only the GIL waits, which the spinners spend most
    # of their time in (4 threads, one GIL), in spin.
    wait_lines = parse_folded(wait_folded)
    assert {s for th, s, f, n in wait_lines} == {"gil_wait"}
    for tid, name in spins.items():
        mine = [f for th, s, f, n in wait_lines if label_tid(th) == tid]
        assert mine and all(py_frame(f[-1])[0] == "spin" for f in mine), wait_lines
    profiles = check_speedscope(wait_ss, wait_doc, states=("gil_wait",))
    assert set(profiles) == set(spins)
    assert [f["name"] for f in wait_ss["shared"]["frames"] if f["name"].startswith("[")] \
        == ["[gil_wait]"]


def test_lock_and_sleep_states_by_either_spelling(python, tmp_path):
    w = Workload(python, "contention.py", ["lock3"])
    try:
        doc, folded, ss = sample_with_stacks(w.pid, tmp_path, "--state", "lock_wait,sleep",
                                             "--state", "lock-wait")
    finally:
        w.stop()
    lines = parse_folded(folded)
    assert {s for th, s, f, n in lines} <= {"lock_wait", "sleep"}
    for name, tid in w.info["tids"].items():
        mine = [(s, f) for th, s, f, n in lines if label_tid(th) == tid]
        want = ("sleep", "holder", MARKS["hold"]) if name == "holder" else \
            ("lock_wait", "lock_waiter", MARKS["lock_wait"])
        # Blocked the whole time, always at the same line.
        assert mine, name
        for state, frames in mine:
            function, _, line = py_frame(frames[-1])
            assert (state, function, line) == want, mine
    check_speedscope(ss, doc, states=("lock_wait", "sleep"))


def test_outputs_under_asan(tmp_path):
    label, python = INTERPRETERS[-1]
    w = Workload(python, "contention.py", ["lock3"])
    try:
        doc, folded, ss = sample_with_stacks(w.pid, tmp_path, binary=GILPROBE_ASAN)
    finally:
        w.stop()
    assert parse_folded(folded)
    check_speedscope(ss, doc)


def test_unknown_state_is_a_usage_error():
    for bad in ("gil", "gil-wait,", "GIL_WAIT", "gil-wait,bogus"):
        r = run_gilprobe(["-p", str(os.getpid()), "--collapsed", "/dev/null", "--state", bad])
        assert r.returncode == 2, (bad, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        for name in ("gil-held", "gil-wait", "lock-wait", "io-wait", "sleep", "nogil-running",
                     "other"):
            assert name in r.stderr, r.stderr
    # A filter with nothing to filter is a mistake too.
    r = run_gilprobe(["-p", str(os.getpid()), "--state", "sleep"])
    assert r.returncode == 2 and "--collapsed" in r.stderr, r.stderr


def test_unwritable_stack_files_fail_with_exit_8(tmp_path):
    label, python = INTERPRETERS[-1]
    w = Workload(python, "contention.py", ["lock3"])
    missing = str(tmp_path / "no" / "such" / "dir" / "out.folded")
    try:
        for opt, path in (("--collapsed", missing), ("--speedscope", missing),
                          ("--collapsed", str(tmp_path))):
            r = run_gilprobe(["-p", str(w.pid), "-d", "0.2", "--json", opt, path])
            assert r.returncode == 8, r.stderr
            assert path in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
            # The report itself was still written.
            assert gp_json(r.stdout)["command"] == "sample"
    finally:
        w.stop()


def test_separators_in_names_are_replaced(python, tmp_path):
    w = Workload(python, "odd_names.py", ["separators"])
    try:
        doc, folded, ss = sample_with_stacks(w.pid, tmp_path, "--state", "sleep")
    finally:
        w.stop()
    tid = w.info["tids"]["odd"]
    lines = parse_folded(folded)
    mine = [f for th, s, f, n in lines if th == "thread odd_thread (%d)" % tid]
    assert mine, folded
    for frames in mine:
        function, file, line = py_frame(frames[-1])
        assert function == "nap_odd" and file == "odd_dir_name/odd_file.py", frames
        assert line == 5
    # speedscope keeps the names as they are: JSON has no separators.
    names = {(f["name"], f.get("file")) for f in ss["shared"]["frames"]}
    assert ("nap;odd", "odd;dir\nname/odd;file.py") in names
    check_speedscope(ss, doc, states=("sleep",))
