"""`gilprobe dump --tasks`: the asyncio tasks of a running process, read
from outside (issue #20): 3.8-3.13 through asyncio's task registry, 3.14+
through the per-thread lists the process's own .AsyncioDebug table
describes - there compared with the interpreter's own
`python -m asyncio ps PID`."""
import json
import re
import subprocess

from conftest import Workload, dump_json, python_version, run_gilprobe

PENDING = {"main", "alpha", "holder", "beta", "gamma", "sleeper", "pure-one", "g-0", "g-1",
           "deep", "timed", "tg-parent", "tg-0", "tg-1"}

# What each task is known to await, and its coroutine chain innermost
# first, by bare function name (3.8-3.10 do not qualify them with their
# class). `timed` is in wait_for; 3.12+ wait_for awaits the coroutine
# itself, earlier ones a future while a task of its own runs it.
KINDS = {"alpha": "event", "holder": "event", "beta": "lock", "gamma": "queue",
         "sleeper": "sleep", "g-0": "sleep", "g-1": "sleep", "main": "gather",
         "pure-one": "event", "deep": "event", "timed": "wait_for", "tg-parent": "taskgroup",
         "tg-0": "sleep", "tg-1": "sleep"}


def chains(minor):
    c = {"alpha": ["wait", "wait_event"], "holder": ["wait", "hold"],
         "beta": ["acquire", "__aenter__", "take_lock"], "gamma": ["get", "take"],
         "sleeper": ["sleep", "nap"], "g-0": ["sleep", "nap"], "g-1": ["sleep", "nap"],
         "main": ["main"], "pure-one": ["wait", "wait_event"], "spinner": ["spin"],
         "deep": ["wait", "level3", "level2", "level1"],
         "timed": ["wait", "wait_for", "timed"] if minor >= 12 else ["wait_for", "timed"],
         "tg-0": ["sleep", "nap"], "tg-1": ["sleep", "nap"],
         # 3.14 split __aexit__ in two
         "tg-parent": (["_aexit"] if minor >= 14 else []) + ["__aexit__", "group"],
         "done-one": []}
    return c


def minor_of(python):
    return int(python_version(python).split(".")[1])


def interpreter_table(python, pid):
    """{task id: (tid, name, coroutine stack, awaiter id)} as CPython's own
    remote reader (`python -m asyncio ps PID`) builds them."""
    code = ("import asyncio.tools as t, json, sys\n"
            "print(json.dumps(t.build_task_table(t._get_awaited_by_tasks(int(sys.argv[1])))))")
    r = subprocess.run([python, "-c", code, str(pid)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {}
    for tid, task_id, name, stack, _chain, _awaiter_name, awaiter_id in json.loads(r.stdout):
        tid_, _, _, awaiters = rows.get(task_id, (tid, name, stack, set()))
        if awaiter_id != "0x0":
            awaiters.add(awaiter_id)
        rows[task_id] = (tid, name, stack, awaiters)
    return rows


def bare(function):
    return function.rsplit(".", 1)[-1]


def test_tasks_are_listed_with_their_names_states_chains_and_awaiters(python):
    minor = minor_of(python)
    w = Workload(python, "asyncio_tasks.py")
    try:
        doc = dump_json(w.pid, "--tasks")
        text = run_gilprobe(["dump", "-p", str(w.pid), "--tasks"], timeout=60)
        ps = interpreter_table(python, w.pid) if minor >= 14 else None
    finally:
        w.stop()
    assert text.returncode == 0, text.stderr
    tasks = doc["tasks"]
    assert tasks["unavailable"] is None and not tasks["truncated"], tasks
    assert tasks["frames_unavailable"] is None, tasks
    expected = dict(w.info["tasks"])  # name -> id(task)
    if ps is not None:
        # 3.14+: a finished task leaves its thread's list, and a task that
        # is not an asyncio.Task (the pure-Python one) is kept elsewhere;
        # the interpreter's own tool lists neither either.
        del expected["done-one"], expected["pure-one"]
    assert len(tasks["loops"]) == 1, tasks
    loop = tasks["loops"][0]
    listed = {t["name"]: t for t in loop["tasks"]}
    if minor <= 11:
        # wait_for runs the awaitable in a task of its own (auto-named)
        inner = [n for n in listed if n not in expected]
        assert len(inner) == 1 and inner[0].startswith("Task-"), listed.keys()
        t = listed.pop(inner[0])
        assert t["awaiting"]["kind"] == "event" and [bare(f["function"]) for f in t["frames"]] \
            == ["wait"], t
    # Exactly the tasks the program made, by name and by id.
    assert {n: t["id"] for n, t in listed.items()} == expected, (listed, expected)
    assert tasks["count"] == len(loop["tasks"])
    # wait_for(timeout=3600) started moments ago: its deadline, from the
    # loop's timer heap, is an hour away; no other task has one
    deadlines = {n: t["deadline_s"] for n, t in listed.items() if t["deadline_s"] is not None}
    assert list(deadlines) == ["timed"] and 3500 < deadlines["timed"] <= 3600, deadlines
    ids = {t["id"]: n for n, t in listed.items()}
    want_chains = chains(minor)
    for name, t in listed.items():
        want = "running" if name == "spinner" else "done" if name == "done-one" else "pending"
        assert t["state"] == want, t
        assert t["native"] == (name != "pure-one"), t
        # A pending task awaits something known; the running and the finished nothing.
        if name in PENDING:
            assert t["awaiting"] is not None and t["awaiting"]["kind"] == KINDS[name], t
            assert t["awaiting"]["id"] is not None, t
        else:
            assert t["awaiting"] is None, t
        assert [bare(f["function"]) for f in t["frames"]] == want_chains[name], t
        assert t["frames_complete"], t
        assert all(f["line"] for f in t["frames"]), t
        # Who awaits it: the gather's and the TaskGroup's children their parents.
        awaiters = sorted(ids[i] for i in t["awaited_by"])
        assert awaiters == (["main"] if name in ("g-0", "g-1") else
                            ["tg-parent"] if name in ("tg-0", "tg-1") else []), (name, t)
    # The chain's lines are the workload's own: deep's outermost frame is
    # level1's `await level2(ev)`.
    deep = listed["deep"]["frames"]
    assert deep[-1]["file"].endswith("asyncio_tasks.py") and deep[-1]["line"] > 0, deep
    if ps is not None:
        # The same tasks, names, thread, coroutine stacks and awaiters as
        # CPython's own reader.
        assert loop["tid"] == w.pid, loop
        ours = {t["id"]: (loop["tid"], t["name"], " -> ".join(f["function"] for f in t["frames"]),
                          set(t["awaited_by"])) for t in loop["tasks"]}
        assert ours == ps, (ours, ps)
    else:
        assert loop["tid"] is None, loop  # not joined to its thread before 3.14
    # The text report: one line per task, the awaited under their awaiter.
    assert "asyncio tasks: %d in 1 loop" % len(loop["tasks"]) in text.stdout, text.stdout
    for name, tid in expected.items():
        assert re.search(r'task %s "%s"' % (tid, re.escape(name)), text.stdout), (name, text.stdout)
    lines = text.stdout.splitlines()
    indent = {name: len(line) - len(line.lstrip()) for line in lines for name in expected
              if re.search(r'task \S+ "%s"' % re.escape(name), line)}
    assert indent["g-0"] > indent["main"] and indent["g-1"] > indent["main"], text.stdout
    assert indent["alpha"] == indent["main"], text.stdout
    assert ("(pure-Python Task)" in text.stdout) == (ps is None)
