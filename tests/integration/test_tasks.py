"""`gilprobe dump --tasks`: the asyncio tasks of a running process, read
from outside (issue #20): 3.8-3.13 through asyncio's task registry, 3.14+
through the per-thread lists the process's own .AsyncioDebug table
describes - there compared with the interpreter's own
`python -m asyncio ps PID`."""
import re
import subprocess

from conftest import Workload, dump_json, python_version, run_gilprobe

PENDING = {"main", "alpha", "holder", "beta", "gamma", "sleeper", "pure-one", "g-0", "g-1"}


def minor_of(python):
    return int(python_version(python).split(".")[1])


def asyncio_ps(python, pid):
    """{task id: (tid, name)} as `python -m asyncio ps PID` lists them."""
    r = subprocess.run([python, "-m", "asyncio", "ps", str(pid)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(\d+)\s+(0x[0-9a-f]+)\s+(\S+)", line)
        if m:
            rows[m.group(2)] = (int(m.group(1)), m.group(3))
    return rows


def test_tasks_are_listed_with_their_names_states_and_waits(python):
    w = Workload(python, "asyncio_tasks.py")
    try:
        doc = dump_json(w.pid, "--tasks")
        text = run_gilprobe(["dump", "-p", str(w.pid), "--tasks"], timeout=60)
        ps = asyncio_ps(python, w.pid) if minor_of(python) >= 14 else None
    finally:
        w.stop()
    assert text.returncode == 0, text.stderr
    tasks = doc["tasks"]
    assert tasks["unavailable"] is None and not tasks["truncated"], tasks
    expected = dict(w.info["tasks"])  # name -> id(task)
    if ps is not None:
        # 3.14+: a finished task leaves its thread's list, and a task that
        # is not an asyncio.Task (the pure-Python one) is kept elsewhere;
        # the interpreter's own tool lists neither either.
        del expected["done-one"], expected["pure-one"]
    assert len(tasks["loops"]) == 1, tasks
    loop = tasks["loops"][0]
    listed = {t["name"]: t for t in loop["tasks"]}
    # Exactly the tasks the program made, by name and by id.
    assert {n: t["id"] for n, t in listed.items()} == expected, (listed, expected)
    assert tasks["count"] == len(expected)
    for name, t in listed.items():
        want = "running" if name == "spinner" else "done" if name == "done-one" else "pending"
        assert t["state"] == want, t
        assert t["native"] == (name != "pure-one"), t
        if ps is None:
            # A pending task awaits a future; the running and the finished none.
            assert (t["awaiting"] is not None) == (name in PENDING), t
    if ps is not None:
        # The same tasks, names and thread as CPython's own reader.
        assert loop["tid"] == w.pid, loop
        assert {i: (loop["tid"], t["name"]) for i, t in ((t["id"], t) for t in loop["tasks"])} \
            == ps, (loop, ps)
    else:
        assert loop["tid"] is None, loop  # not joined to its thread before 3.14
    # The text report lists the same, one line per task.
    assert "asyncio tasks: %d in 1 loop" % len(expected) in text.stdout, text.stdout
    for name, tid in expected.items():
        assert re.search(r'task %s "%s"' % (tid, re.escape(name)), text.stdout), (name, text.stdout)
    assert ("(pure-Python Task)" in text.stdout) == (ps is None)
