"""Process tree, CPUs and memory (the measurements S4, S6 and S8 need)."""
import json
import os
import signal

import pytest
from conftest import gp_json, INTERPRETERS, Workload, run_gilprobe


def system_of(w, seconds=1.5):
    r = run_gilprobe(["-p", str(w.pid), "-d", str(seconds), "--json"], timeout=60)
    assert r.returncode == 0, r.stderr
    return gp_json(r.stdout)["system"]


def test_process_tree_growth_and_zombies(python):
    w = Workload(python, "children.py", ["3"])
    try:
        s = system_of(w)
    finally:
        os.killpg(w.pid, signal.SIGKILL)  # the children too
        w.stop()
    tree = s["process_tree"]
    assert tree["zombies"] == 3, tree
    assert tree["zombie_parent"] == w.pid, tree
    assert tree["python_children"] >= 1, tree
    # One new child every 100 ms over 1.5 s: about 15 more at the end.
    assert 8 <= tree["children_end"] - tree["children_start"] <= 20, tree
    assert tree["children_growth_per_s"] > 4, tree


def test_cpus_and_thread_stacks(python):
    w = Workload(python, "known_threads.py")
    w.wait_main_asleep()  # blocked too: its stack pointer is known
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


def findings(w, seconds=2.0):
    r = run_gilprobe(["-p", str(w.pid), "-d", str(seconds), "--json"], timeout=60)
    assert r.returncode == 0, r.stderr
    return gp_json(r.stdout)["findings"]


def test_growing_tree_is_s4(python):
    w = Workload(python, "children.py", ["3"])
    try:
        found = findings(w, seconds=1.5)
    finally:
        os.killpg(w.pid, signal.SIGKILL)
        w.stop()
    assert found[0]["scenario"] == "S4", found
    assert "process %d " % w.pid in found[0]["culprit"] and "wait()" in found[0]["culprit"]


def test_many_threads_and_a_growing_heap_is_s8(python):
    w = Workload(python, "threads_mem.py", ["150", "4"])
    try:
        found = findings(w, seconds=2.0)
    finally:
        w.stop()
    s8 = [f for f in found if f["scenario"] == "S8"]
    assert s8 and s8[0]["severity"] == "warning", found
    assert found[0]["scenario"] == "S8", found


def test_idle_threads_without_growth_are_only_info(python):
    w = Workload(python, "threads_mem.py", ["150", "0"])
    try:
        found = findings(w, seconds=1.0)
    finally:
        w.stop()
    assert [f["severity"] for f in found if f["scenario"] == "S8"] == ["info"], found
    assert [f for f in found if f["severity"] != "info"] == []


CPU_HEAVY = pytest.mark.xdist_group("cpu-heavy")


@CPU_HEAVY
@pytest.mark.parametrize("python", [p for _, p in INTERPRETERS[:1]] + [p for _, p in INTERPRETERS[-1:]])
def test_pool_larger_than_the_cores_is_s6(python):
    cores = physical_cores()
    w = Workload(python, "pool.py", [str(cores + 1)])
    try:
        found = findings(w, seconds=2.0)
    finally:
        os.killpg(w.pid, signal.SIGKILL)
        w.stop()
    assert found and found[0]["scenario"] == "S6", found


@CPU_HEAVY
@pytest.mark.parametrize("python", [p for _, p in INTERPRETERS[:1]] + [p for _, p in INTERPRETERS[-1:]])
def test_pool_sized_to_the_cores_is_fine(python):
    w = Workload(python, "pool.py", [str(physical_cores())])
    try:
        found = findings(w, seconds=2.0)
    finally:
        os.killpg(w.pid, signal.SIGKILL)
        w.stop()
    assert [f for f in found if f["severity"] != "info"] == [], found


def physical_cores():
    cores = set()
    base = "/sys/devices/system/cpu"
    for name in os.listdir(base):
        if name.startswith("cpu") and name[3:].isdigit():
            try:
                with open(os.path.join(base, name, "topology", "core_id")) as f:
                    core = f.read().strip()
                with open(os.path.join(base, name, "topology", "physical_package_id")) as f:
                    pkg = f.read().strip()
                cores.add((pkg, core))
            except OSError:
                pass
    return min(len(cores) or os.cpu_count(), len(os.sched_getaffinity(0)))


@CPU_HEAVY
@pytest.mark.parametrize("python", [p for _, p in INTERPRETERS[:1]] + [p for _, p in INTERPRETERS[-1:]])
def test_subprocesses_are_sampled_too(python):
    w = Workload(python, "parent_child.py")
    try:
        r = run_gilprobe(["-p", str(w.pid), "-d", "2", "--subprocesses", "--json"], timeout=60)
        text = run_gilprobe(["-p", str(w.pid), "-d", "0.5", "--subprocesses"], timeout=60).stdout
    finally:
        os.killpg(w.pid, signal.SIGKILL)
        w.stop()
    doc = gp_json(r.stdout)
    # The parent is idle; its child's four threads fight for the GIL.
    assert doc["gil"]["held_pct"] < 10
    child = [c for c in doc["subprocesses"] if c["pid"] == w.info["child"]]
    assert child, doc["subprocesses"]
    assert child[0]["gil"]["held_pct"] >= 90
    assert child[0]["findings"][0]["scenario"] == "S2"
    assert "Subprocesses (" in text and str(w.info["child"]) in text
