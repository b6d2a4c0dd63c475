"""Threads waiting for work or a signal are idle, not lock contention: an
idle ThreadPoolExecutor, queue consumers (queue.Queue and the C
SimpleQueue), Event/Condition/Barrier/Semaphore waiters and a Thread.join
are in the idle_wait state, in `dump` "idle", and make no S5 (nor any
warning). Real critical sections still do: a lock convoy around a 2 ms
write and a Condition entered to do work are S5."""
import json
import os

from conftest import gp_json, Workload, run_gilprobe


def sample(pid, *args, seconds=1.5):
    r = run_gilprobe(["-p", str(pid), "-d", str(seconds), "--json"] + list(args), timeout=60)
    assert r.returncode == 0, r.stderr
    return gp_json(r.stdout)


def test_idle_waiters_are_idle_not_contending(python, tmp_path):
    w = Workload(python, "idle_pools.py", ["idle"])
    try:
        doc = sample(w.pid)
        collapsed = tmp_path / "idle.folded"
        folded = run_gilprobe(["-p", str(w.pid), "-d", "0.5", "--collapsed", str(collapsed),
                               "--state", "idle-wait"])
        check = run_gilprobe(["-p", str(w.pid), "-d", "0.3",
                              "--fail-on", "thread.max_idle_wait_pct>50"])
        dump = gp_json(run_gilprobe(["dump", "-p", str(w.pid), "--json"]).stdout)
    finally:
        w.stop()
    tids = w.info["tids"]
    assert len(tids) == 26, tids  # 8 pool workers and 18 waiters of every kind
    by_tid = {t["tid"]: t for t in doc["threads"]}
    for name, tid in tids.items():
        t = by_tid[tid]
        assert t["idle_wait_pct"] >= 90 and t["lock_wait_pct"] <= 5, (name, t)
    assert [f for f in doc["findings"] if f["scenario"] == "S5"] == [], doc["findings"]
    assert [f for f in doc["findings"] if f["severity"] != "info"] == [], doc["findings"]
    # The executor's eight workers are one pool, idle: information.
    pools = [f for f in doc["findings"] if f["title"] == "Worker pool mostly idle" and
             "_worker (" in f["culprit"]]
    assert len(pools) == 1 and pools[0]["severity"] == "info", doc["findings"]
    assert pools[0]["verdict"].startswith("8 of 8 threads running _worker ("), pools[0]
    assert "larger than this load needs" in pools[0]["verdict"], pools[0]
    assert doc["locks"] == [], doc["locks"]
    # The state everywhere a state is named: flame graphs, checks, dump.
    assert folded.returncode == 0, folded.stderr
    lines = collapsed.read_text().splitlines()
    assert len(lines) >= 26 and all(";[idle_wait];" in ln for ln in lines), lines[:3]
    assert check.returncode == 9 and "thread.max_idle_wait_pct>50" in check.stderr, check.stderr
    blocked = {t["tid"]: t["blocked_on"] for t in dump["threads"]}
    for name, tid in tids.items():
        assert blocked[tid] == "idle", (name, blocked[tid])


def test_a_pool_with_work_queued_is_fully_occupied(python):
    """Four executor workers whose 20 ms tasks keep a dozen more queued:
    none waits for work, which the Diagnosis says as information (no
    warning: waiting on I/O is what these tasks do), with the depth of the
    executor's queue."""
    w = Workload(python, "idle_pools.py", ["busy"])
    try:
        doc = sample(w.pid)
    finally:
        w.stop()
    occupied = [f for f in doc["findings"] if f["title"] == "Every worker of a pool occupied"]
    assert len(occupied) == 1 and occupied[0]["severity"] == "info", doc["findings"]
    assert occupied[0]["verdict"].startswith("all 4 threads running _worker ("), occupied[0]
    # Its queue, read from outside: the feeder keeps 16 tasks submitted and
    # unfinished, 4 of them running, so up to 12 wait (fewer just after the
    # workers took theirs, before the feeder's next round 5 ms later); at
    # most 16 whatever happens.
    evidence = {e["metric"]: e["value"] for e in occupied[0]["evidence"]}
    assert 4 <= evidence["pool.queue_depth_mean"] <= 12, occupied[0]
    assert evidence["pool.queue_depth_max"] <= 16, occupied[0]
    assert "tasks waited in its queue on average" in occupied[0]["verdict"], occupied[0]
    assert [f for f in doc["findings"] if f["severity"] != "info"] == [], doc["findings"]
    assert not any(f["title"] == "Worker pool mostly idle" for f in doc["findings"])


def test_critical_sections_are_still_lock_contention(python):
    for mode in ("convoy", "condcs"):
        w = Workload(python, "idle_pools.py", [mode])
        try:
            doc = sample(w.pid)
        finally:
            w.stop()
        s5 = [f for f in doc["findings"] if f["scenario"] == "S5"]
        assert s5 and s5[0]["severity"] in ("warning", "critical"), (mode, doc["findings"])
        site = "idle_pools.py:" if mode == "convoy" else "__enter__ ("
        assert site in s5[0]["culprit"], (mode, s5[0])
        by_tid = {t["tid"]: t for t in doc["threads"]}
        for name, tid in w.info["tids"].items():
            assert by_tid[tid]["idle_wait_pct"] < 5, (mode, name, by_tid[tid])
