"""Python thread names (threading.Thread.name, issue 16) on every
interpreter: read from the target's threading._active, shown beside the OS
name in dump, the -p report, top and the flame graphs; null with a reason
where a thread has none (started through _thread before threading was
imported) or where the version's layout does not say where they are."""
import re

import pytest
from conftest import INTERPRETERS, Workload, gp_json, run_gilprobe
from interpreters import FREE_THREADED_MINORS, free_threaded_python

# Every interpreter, the free-threaded builds too (test_freethreaded.py
# fails when one is missing).
PYTHONS = [pytest.param(p, id=label) for label, p in INTERPRETERS] + [
    pytest.param(free_threaded_python(m), id=m + "t") for m in FREE_THREADED_MINORS]


@pytest.fixture(scope="module", params=PYTHONS)
def named(request):
    w = Workload(request.param, "thread_names.py")
    yield w
    w.stop()


def expected(w):
    """{tid: Python name or None} as the workload knows them."""
    tids = w.info["tids"]
    return {tids["main"]: "MainThread", tids["named"]: "quote-desk",
            tids["default"]: w.info["default_name"], tids["renamed"]: "after-the-rename",
            tids["pooled"]: w.info["pool_name"], tids["early"]: None}


def copies_name_to_os(w):
    return tuple(int(x) for x in w.info["version"].split(".")) >= (3, 14)


def test_dump_names_every_thread(named):
    r = run_gilprobe(["dump", "-p", str(named.pid), "--json"])
    assert r.returncode == 0, r.stderr
    threads = {t["tid"]: t for t in gp_json(r.stdout)["threads"]}
    want = expected(named)
    assert set(threads) == set(want)
    for tid, name in want.items():
        assert threads[tid]["python_name"] == name, threads[tid]
        if name is None:
            assert threads[tid]["python_name_unavailable"].startswith("not a threading.Thread")
        else:
            assert threads[tid]["python_name_unavailable"] is None
    tids = named.info["tids"]
    if copies_name_to_os(named):
        # 3.14+ gives the OS thread the Python name when it starts (cut to
        # 15 bytes); a later rename stays in Python.
        assert threads[tids["named"]]["name"] == "quote-desk"
        assert threads[tids["renamed"]]["name"] == "before"
    text = run_gilprobe(["dump", "-p", str(named.pid)]).stdout
    line = {int(m.group(1)): m.group(2) for m in re.finditer(r'^Thread (\d+) "(.*)"', text, re.M)}
    assert line[tids["named"]] == "quote-desk", line  # no OS name beside: it says nothing more
    if copies_name_to_os(named):
        assert line[tids["renamed"]] == "after-the-rename [before]", line
    else:
        assert line[tids["renamed"]] == "after-the-rename", line
    assert line[tids["early"]] == threads[tids["early"]]["name"], line  # the OS name alone


def test_report_top_and_flame_graphs_name_threads(named, tmp_path):
    folded = tmp_path / "stacks.folded"
    r = run_gilprobe(["-p", str(named.pid), "-d", "1", "--json", "--collapsed", str(folded)])
    assert r.returncode == 0, r.stderr
    threads = {t["tid"]: t for t in gp_json(r.stdout)["threads"]}
    for tid, name in expected(named).items():
        assert threads[tid]["python_name"] == name, threads[tid]
    tids = named.info["tids"]
    roots = {l.split(";")[0] for l in folded.read_text().splitlines()}
    assert "thread quote-desk (%d)" % tids["named"] in roots, roots
    assert "thread %s (%d)" % (named.info["pool_name"], tids["pooled"]) in roots, roots
    text = run_gilprobe(["-p", str(named.pid), "-d", "0.5"]).stdout
    assert re.search(r"^  %d\s+quote-desk\s" % tids["named"], text, re.M), text
    top = run_gilprobe(["top", "-p", str(named.pid), "-n", "1", "-i", "0.5"])
    assert top.returncode == 0, top.stderr
    assert re.search(r"^\s*%d\s+quote-desk\s" % tids["named"], top.stdout, re.M), top.stdout


def test_no_names_before_threading_is_imported():
    python = dict(INTERPRETERS)["pyenv-3.12"]
    w = Workload(python, "no_threading.py")
    try:
        r = run_gilprobe(["dump", "-p", str(w.pid), "--json"])
    finally:
        w.stop()
    assert r.returncode == 0, r.stderr
    threads = gp_json(r.stdout)["threads"]
    assert len(threads) == 2
    for t in threads:
        assert t["python_name"] is None
        assert t["python_name_unavailable"] == "threading is not imported", t


def test_unknown_version_reports_names_as_not_measured():
    w = Workload(dict(INTERPRETERS)["unstable-3.15"], "thread_names.py")
    try:
        r = run_gilprobe(["dump", "-p", str(w.pid), "--json"],
                         env={"GILPROBE_TEST_WITHHOLD_LAYOUT": "3.15"})
    finally:
        w.stop()
    assert r.returncode == 0, r.stderr
    for t in gp_json(r.stdout)["threads"]:
        assert t["python_name"] is None
        assert "_Py_DebugOffsets" in t["python_name_unavailable"], t
