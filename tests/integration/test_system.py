"""Process tree, CPUs and memory (the measurements S4, S6 and S8 need)."""
import json
import os
import signal

import pytest
from conftest import Workload, interpreter_params, run_gilprobe


@pytest.fixture(params=interpreter_params())
def python(request):
    return request.param


def system_of(w, seconds=1.5):
    r = run_gilprobe(["-p", str(w.pid), "-d", str(seconds), "--json"], timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["system"]


def test_process_tree_growth_and_zombies(python):
    w = Workload(python, "children.py", ["3"])
    try:
        s = system_of(w)
    finally:
        os.killpg(w.pid, signal.SIGKILL)  # the children too
        w.stop()
    tree = s["process_tree"]
    assert tree["zombies"] == 3, tree
    assert tree["python_children"] >= 1, tree
    # One new child every 100 ms over 1.5 s: about 15 more at the end.
    assert 8 <= tree["children_end"] - tree["children_start"] <= 20, tree
    assert tree["children_growth_per_s"] > 4, tree


def test_cpus_and_thread_stacks(python):
    w = Workload(python, "known_threads.py")
    try:
        s = system_of(w, seconds=0.5)
    finally:
        w.stop()
    cpu, mem = s["cpu"], s["memory"]
    assert cpu["logical"] == os.cpu_count()
    assert 1 <= cpu["physical"] <= cpu["logical"]
    assert cpu["affinity"] == len(os.sched_getaffinity(0))  # inherited from the test
    # Four threads are blocked (their stack pointers are known) besides the
    # main thread; each reserves a multi-MiB stack of which little is used.
    assert mem["thread_stacks"] >= 5, mem
    assert mem["stacks_reserved_kb"] >= 4 * 1024, mem
    assert mem["stacks_resident_kb"] < mem["stacks_reserved_kb"] / 4, mem
    assert mem["rss_end_kb"] > 1024
