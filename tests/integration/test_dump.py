"""`gilprobe dump` against real CPython processes whose threads are known
to sit at marked lines (tests/workloads/known_threads.py)."""
import json
import os
import re
import signal
import subprocess
import time

import pytest
from conftest import (gp_json, GILPROBE_ASAN, MISSING_INTERPRETERS, Workload, cpu_ticks, dump_json,
                      interpreter_params, marks,
                      python_version, run_gilprobe, task_states)

MARKS = marks("known_threads.py")


def test_every_expected_interpreter_is_installed():
    assert not MISSING_INTERPRETERS, "missing interpreters: " + "; ".join(MISSING_INTERPRETERS)


def qualified(version, qualname, name):
    """3.11+ report co_qualname, older versions co_name."""
    major, minor = (int(x) for x in version.split(".")[:2])
    return qualname if (major, minor) >= (3, 11) else name


def by_tid(doc):
    return {t["tid"]: t for t in doc["threads"]}


def check_known_threads(doc, w, spinner_line_exact=True, interval_ms=5.0):
    """interval_ms: None for a version read through its _Py_DebugOffsets
    alone, which do not publish it (test_versions.py)."""
    info = w.info
    version = info["version"]
    assert doc["schema"] == 1
    assert doc["python"]["version"] == version == python_version(w.interpreter)
    assert doc["python_threads"] == 6
    assert doc["os_threads"] == 6
    assert doc["gil"]["switch_interval_ms"] == interval_ms
    threads = by_tid(doc)
    tids = info["tids"]
    assert set(threads) == set(tids.values()) | {w.pid}

    def top(tid):
        return threads[tid]["frames"][0]

    main = threads[w.pid]
    assert main["is_main"]
    assert (top(w.pid)["function"], top(w.pid)["line"]) == ("main_idle", MARKS["main"])
    assert [f["function"] for f in main["frames"]] == ["main_idle", "main", "<module>"]
    assert main["blocked_on"] == "sleep"

    expect = {
        "sleeper": ("sleeper", MARKS["sleep"], "sleep"),
        "holder": ("holder", MARKS["hold"], "sleep"),
        "waiter": ("waiter", MARKS["lockwait"], "lock"),
        "reader": ("reader", MARKS["recv"], "io"),
    }
    for name, (func, line, blocked) in expect.items():
        t = threads[tids[name]]
        assert t["name"] == "gp-" + name
        assert (top(t["tid"])["function"], top(t["tid"])["line"]) == (func, line), name
        assert top(t["tid"])["file"].endswith("known_threads.py")
        assert t["blocked_on"] == blocked, (name, t)
        assert t["state"] == "sleeping"
        assert not t["holds_gil"]
        assert t["frames"][-1]["function"] in ("_bootstrap", "Thread._bootstrap")
        assert t["frames_complete"]
    waiter = threads[tids["waiter"]]
    assert int(waiter["wait_address"], 16) == info["lock_sem"], "waits on the lock's semaphore"
    assert waiter["syscall"] == "futex"
    assert threads[tids["reader"]]["syscall"] == "recvfrom"

    spinner = threads[tids["spinner"]]
    assert spinner["name"] == "gp-spinner"
    assert top(spinner["tid"])["function"] == qualified(version, "Spinner.spin", "spin")
    if spinner_line_exact:
        assert top(spinner["tid"])["line"] == MARKS["spin"]
    assert spinner["blocked_on"] is None


def test_dump_json(known_threads):
    check_known_threads(dump_json(known_threads.pid), known_threads)


def test_dump_text(known_threads):
    w = known_threads
    r = run_gilprobe(["dump", "-p", str(w.pid)])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Python %s (" % w.info["version"] in out
    assert "Threads: 6 Python, 6 OS" in out
    assert "switch interval 5 ms" in out
    tids = w.info["tids"]
    for name, blocked in (("sleeper", "blocked=sleep"), ("waiter", "blocked=lock (futex 0x%x)"
                                                         % w.info["lock_sem"]),
                          ("reader", "blocked=io (recvfrom)")):
        header = [l for l in out.splitlines() if l.startswith("Thread %d " % tids[name])]
        # Its Python name, then the OS name the workload gave it (it says more).
        assert len(header) == 1 and ' [gp-%s]"' % name in header[0] and blocked in header[0], header
        assert re.match(r'Thread \d+ "Thread-\d+( \(%s\))? \[' % name, header[0]), header
    lines = out.splitlines()
    i = next(k for k, l in enumerate(lines) if l.startswith("Thread %d " % tids["waiter"]))
    assert lines[i + 1].strip().startswith("waiter (")
    assert lines[i + 1].strip().endswith("known_threads.py:%d)" % MARKS["lockwait"])


def test_cpu_bound_thread_holds_gil_in_most_dumps(known_threads):
    spinner = known_threads.info["tids"]["spinner"]
    holders = [dump_json(known_threads.pid)["gil"]["holder_tid"] for _ in range(20)]
    assert holders.count(spinner) >= 15, holders


def test_output_file(known_threads, tmp_path):
    out = tmp_path / "dump.json"
    r = run_gilprobe(["dump", "-p", str(known_threads.pid), "--json", "-o", str(out)])
    assert r.returncode == 0 and r.stdout == "", r.stderr
    check_known_threads(gp_json(out.read_text()), known_threads)


def test_sanitized_binary_reads_the_same(known_threads):
    r = run_gilprobe(["dump", "-p", str(known_threads.pid), "--json"], binary=GILPROBE_ASAN)
    assert r.returncode == 0 and "Sanitizer" not in r.stderr, r.stderr
    check_known_threads(gp_json(r.stdout), known_threads)


def assert_running_and_progressing(w):
    """No thread left stopped, and the CPU-bound thread keeps running."""
    deadline = time.time() + 2
    while True:
        states = task_states(w.pid)
        stopped = {t: s for t, s in states.items() if s in "tT"}
        if not stopped:
            break
        assert time.time() < deadline, "threads left stopped: %s" % stopped
        time.sleep(0.02)
    spinner = w.info["tids"]["spinner"]
    before = cpu_ticks(w.pid, spinner)
    time.sleep(0.3)
    assert cpu_ticks(w.pid, spinner) > before, "the CPU-bound thread made no progress"


def test_blocking_dump_is_consistent_and_resumes(known_threads_to_stop):
    w = known_threads_to_stop
    doc = dump_json(w.pid, "--blocking")
    assert doc["blocking"] and doc["paused_ms"] is not None and doc["paused_ms"] < 1000
    check_known_threads(doc, w)
    assert_running_and_progressing(w)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_blocking_dump_killed_midway_resumes_target(known_threads_to_stop, sig):
    w = known_threads_to_stop
    env = dict(os.environ, GILPROBE_TEST_PAUSE_MS="5000")
    from conftest import GILPROBE
    p = subprocess.Popen([GILPROBE, "dump", "-p", str(w.pid), "--blocking"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    spinner = w.info["tids"]["spinner"]
    deadline = time.time() + 5
    while task_states(w.pid).get(spinner) != "t":
        assert time.time() < deadline, "gilprobe --blocking never stopped the target"
        assert p.poll() is None, p.stderr.read()
        time.sleep(0.01)
    assert all(s == "t" for s in task_states(w.pid).values()), "all threads stopped"
    p.send_signal(sig)
    p.wait(timeout=10)
    assert p.returncode == -sig
    assert_running_and_progressing(w)


def test_runtime_found_without_symbols(known_threads):
    """Stripped builds: _PyRuntime from the .PyRuntime section (3.10+) and,
    without Py_Version or the version buffer's symbol, the version from a
    scan of the library's data."""
    w = known_threads
    minor = int(w.info["version"].split(".")[1])
    hidden = ["Py_Version", "version", "version.0", "version.1"]
    if minor >= 10:
        hidden.append("_PyRuntime")  # 3.8/3.9 have no .PyRuntime section
    r = run_gilprobe(["dump", "-p", str(w.pid), "--json"],
                     env={"GILPROBE_TEST_HIDE_SYMBOLS": ",".join(hidden)})
    assert r.returncode == 0, r.stderr
    doc = gp_json(r.stdout)
    if minor >= 10:
        assert doc["python"]["found_by"] == ".PyRuntime section"
    expected_source = "_Py_DebugOffsets" if minor >= 13 else "version string"
    assert doc["python"]["version_source"] == expected_source
    check_known_threads(doc, w)


def test_layout_source(known_threads):
    doc = dump_json(known_threads.pid)
    minor = int(known_threads.info["version"].split(".")[1])
    assert doc["python"]["layout"] == ("_Py_DebugOffsets" if minor >= 13 else "generated table")


def ns_to_host_tids(pid):
    """{tid inside the target's PID namespace: tid as we see it}."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            nspid = [l for l in f if l.startswith("NSpid:")][0].split()[1:]
        out[int(nspid[-1])] = int(tid)
    return out


@pytest.fixture(scope="module", params=interpreter_params())
def known_threads_in_pid_namespace(request):
    w = Workload(request.param, "known_threads.py",
                 prefix=["unshare", "--pid", "--mount", "--fork", "--mount-proc",
                         "--kill-child"])
    # Translate what the workload saw (its namespace's ids) to ours.
    mapping = ns_to_host_tids(w.pid)
    assert w.info["pid"] == 1 and mapping[1] == w.pid
    w.info["tids"] = {k: mapping[v] for k, v in w.info["tids"].items()}
    w.wait_main_asleep()
    yield w
    w.stop()


def test_dump_in_another_pid_namespace(known_threads_in_pid_namespace):
    """A containerised target, found by its host PID; its thread ids are
    namespace ids inside the interpreter and are translated (NSpid)."""
    w = known_threads_in_pid_namespace
    check_known_threads(dump_json(w.pid), w)
