"""`gilprobe dump --tasks`: the asyncio tasks of a running process, read
from outside (CPython 3.8-3.13 so far; issue #20)."""
import re

from conftest import Workload, dump_json, python_version, run_gilprobe

# Tasks are read where the registry is a WeakSet (3.8-3.13, default builds).
READ_MINORS = range(8, 14)

PENDING = {"main", "alpha", "holder", "beta", "gamma", "sleeper", "pure-one", "g-0", "g-1"}


def reads_tasks(python):
    version = python_version(python)
    minor = int(version.split(".")[1])
    return minor in READ_MINORS and not version.endswith("t") and "free-threading" not in version


def test_tasks_are_listed_with_their_names_states_and_waits(python):
    w = Workload(python, "asyncio_tasks.py")
    try:
        doc = dump_json(w.pid, "--tasks")
        text = run_gilprobe(["dump", "-p", str(w.pid), "--tasks"], timeout=60)
    finally:
        w.stop()
    tasks = doc["tasks"]
    assert text.returncode == 0, text.stderr
    if not reads_tasks(python):
        # Said, not guessed: 3.14+ keep tasks in per-thread lists.
        assert tasks["count"] == 0 and tasks["loops"] == [], tasks
        assert "3.8-3.13" in tasks["unavailable"], tasks
        assert "asyncio tasks: not read (" in text.stdout
        return
    assert tasks["unavailable"] is None and not tasks["truncated"], tasks
    expected = w.info["tasks"]  # name -> id(task)
    assert len(tasks["loops"]) == 1, tasks
    listed = {t["name"]: t for t in tasks["loops"][0]["tasks"]}
    # Exactly the tasks the program made, by name and by id.
    assert {n: t["id"] for n, t in listed.items()} == expected, (listed, expected)
    assert tasks["count"] == len(expected)
    for name, t in listed.items():
        want = "running" if name == "spinner" else "done" if name == "done-one" else "pending"
        assert t["state"] == want, t
        assert t["native"] == (name != "pure-one"), t
        # A pending task awaits a future; the running and the finished none.
        assert (t["awaiting"] is not None) == (name in PENDING), t
    # The text report lists the same, one line per task.
    assert "asyncio tasks: %d in 1 loop" % len(expected) in text.stdout, text.stdout
    for name, tid in expected.items():
        assert re.search(r'task %s "%s"' % (tid, re.escape(name)), text.stdout), (name, text.stdout)
    assert "(pure-Python Task)" in text.stdout
