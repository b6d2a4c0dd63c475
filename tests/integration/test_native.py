"""--native: mixed C/Python stacks from libunwind + elfutils, per-thread stops.

Every assertion follows from what the workloads do (tests/workloads/*.py,
their # MARK: lines), on every interpreter of tests/interpreters.py.
"""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import (gp_json, GILPROBE, INTERPRETERS, Workload, dump_json, interpreter_params, marks,
                      run_gilprobe, task_states)

KT = marks("known_threads.py")
CT = marks("contention.py")
STRIPPED = "/usr/bin/python3.11"  # Debian's: no symbols for static functions
LIBC_FUTEX_WAITS = {"__futex_abstimed_wait_common", "do_futex_wait", "__new_sem_wait_slow64",
                    "sem_clockwait", "sem_timedwait", "pthread_cond_timedwait",
                    "__pthread_cond_wait_common", "futex_wait"}


# --native needs the target's libraries at the same paths as gilprobe's
# (libunwind reads their unwind tables): the interpreters that run under
# this machine's root. 3.14 and 3.15 run in a chroot: refused, clearly
# (below, on 3.14).
CONTAINED = "unstable-3.14"
SAME_ROOT = [p for p in interpreter_params() if not p.id.startswith("unstable-")]


def test_native_in_a_container_is_refused_with_a_reason():
    python = dict((label, path) for label, path in INTERPRETERS)[CONTAINED]
    w = Workload(python, "known_threads.py")
    try:
        r = run_gilprobe(["dump", "-p", str(w.pid), "--native"])
        assert_not_stopped(w.pid)
    finally:
        w.stop()
    assert r.returncode == 6, r.stderr
    assert "another root directory" in r.stderr and r.stderr.count("\n") == 1


def native_of(doc, tid):
    t = [t for t in doc["threads"] if t["tid"] == tid]
    assert t, "thread %d not in the dump" % tid
    n = t[0]["native"]
    assert n["ok"], n
    return t[0], n


def index_of(frames, pred):
    for i, f in enumerate(frames):
        if pred(f):
            return i
    return None


def py_frame(function, file_end, line):
    return lambda f: (f["kind"] == "python" and f["function"].endswith(function)
                      and f["file"].endswith(file_end) and f["line"] == line)


def assert_not_stopped(pid):
    # A thread left in a ptrace stop shows as 't' (or 'T').
    deadline = time.time() + 2
    while True:
        states = task_states(pid)
        stopped = {tid: s for tid, s in states.items() if s in ("t", "T")}
        if not stopped or time.time() > deadline:
            break
        time.sleep(0.05)
    assert not stopped, "threads left stopped: %r" % stopped


@pytest.fixture(scope="module", params=SAME_ROOT)
def lock_target(request):
    w = Workload(request.param, "known_threads.py")
    w.wait_main_asleep()
    yield w
    w.stop()


@pytest.fixture(scope="module", params=SAME_ROOT)
def cpu4(request):
    w = Workload(request.param, "contention.py", ["cpu4"])
    yield w
    w.stop()


@pytest.fixture(scope="module", params=SAME_ROOT)
def nogil(request):
    w = Workload(request.param, "contention.py", ["nogil"])
    yield w
    w.stop()


def test_lock_waiter_native_stack(lock_target):
    doc = dump_json(lock_target.pid, "--native")
    t, n = native_of(doc, lock_target.info["tids"]["waiter"])
    frames = n["frames"]
    acquire = index_of(frames, lambda f: f["kind"] == "native"
                       and f["function"] == "PyThread_acquire_lock_timed")
    futex = index_of(frames, lambda f: f["kind"] == "native" and f["library"].startswith("libc")
                     and (f["function"] or "").split(".")[0] in LIBC_FUTEX_WAITS)
    line = index_of(frames, py_frame("waiter", "known_threads.py", KT["lockwait"]))
    assert acquire is not None and futex is not None and line is not None, frames
    # Innermost first: libc's futex wait, the lock acquire, then the Python
    # line that called lock.acquire().
    assert futex < acquire < line
    assert n["state"] == "lock_wait" and n["agrees_with_syscall"]
    assert t["blocked_on"] == "lock"
    if lock_target.interpreter == STRIPPED:
        # Static functions have no symbol: shown as python3.11+offset.
        assert any(f["kind"] == "native" and f["function"] is None
                   and f["library"] == "python3.11" and f["offset"] for f in frames[:line])
    else:
        # DWARF: the acquire's source line.
        assert frames[acquire]["file"].endswith("thread_pthread.h")
        assert frames[acquire]["line"] > 0
    # The Python frames keep their order around the merged native ones.
    py = [f for f in frames if f["kind"] == "python"]
    assert py[0]["function"] == "waiter"
    assert [f["function"] for f in py] == [f["function"] for f in t["frames"]]
    assert_not_stopped(lock_target.pid)


def test_gil_waiters_show_take_gil(cpu4):
    spin_tids = set(cpu4.info["tids"].values())
    seen = 0
    for _ in range(5):
        doc = dump_json(cpu4.pid, "--native")
        found = False
        for t in doc["threads"]:
            if t["tid"] not in spin_tids or not t["native"]["ok"]:
                continue
            frames = t["native"]["frames"]
            # The GIL is asked for at the loop's back edge: the `while`
            # line just above the marked body line, or the body itself.
            spin = index_of(frames, lambda f: f["kind"] == "python"
                            and f["function"] == "spin" and f["file"].endswith("contention.py")
                            and f["line"] in (CT["spin"] - 1, CT["spin"]))
            if cpu4.interpreter == STRIPPED:
                # No take_gil symbol: the condition wait in libc, called
                # straight from unnamed interpreter code below `spin`.
                wait = index_of(frames, lambda f: f["kind"] == "native"
                                and f["function"] == "pthread_cond_timedwait")
                ok = (wait is not None and spin is not None and wait < spin
                      and frames[wait + 1]["function"] is None
                      and frames[wait + 1]["library"] == "python3.11"
                      and t["native"]["state"] != "lock_wait")
            else:
                take = index_of(frames, lambda f: f["kind"] == "native"
                                and f["function"] == "take_gil")
                ok = (take is not None and spin is not None and take < spin
                      and t["native"]["state"] == "gil_wait")
            found = found or ok
        seen += found
    assert seen >= 3, "GIL wait seen in the native stacks of only %d of 5 dumps" % seen
    assert_not_stopped(cpu4.pid)


def test_c_extension_frame_between_python_frames(nogil):
    tid = nogil.info["tids"]["hasher"]
    for _ in range(10):
        doc = dump_json(nogil.pid, "--native")
        t, n = native_of(doc, tid)
        frames = n["frames"]
        line = index_of(frames, py_frame("hasher", "contention.py", CT["pbkdf2"]))
        c = index_of(frames, lambda f: f["kind"] == "native" and (
            "libcrypto" in f["library"] or "_hashlib" in f["library"]))
        if line is not None and c is not None:
            break
        time.sleep(0.05)
    assert line is not None and c is not None, frames
    # The C code runs inside the Python frame that called it: inner of it.
    assert c < line
    assert all(f["kind"] == "native" for f in frames[:line])
    assert frames[line + 1:] and frames[-1]["kind"] == "native"  # thread start in C
    assert_not_stopped(nogil.pid)


def test_native_only_thread_is_listed(lock_target):
    # ctypes-free: a thread Python does not know about cannot be started
    # here without one, so check the marking instead: every OS thread is
    # either a Python thread or listed as native-only.
    doc = dump_json(lock_target.pid, "--native")
    listed = {t["tid"] for t in doc["threads"]} | {t["tid"] for t in doc["native_only_threads"]}
    assert listed == set(task_states(lock_target.pid))
    assert doc["native_pause"]["threads_stopped"] == len(listed)
    assert 0 < doc["native_pause"]["max_ms"] <= doc["native_pause"]["total_ms"]


def test_sampler_native_records_mixed_stacks(cpu4):
    r = run_gilprobe(["-p", str(cpu4.pid), "--native", "-d", "1", "--no-bpf", "--json"])
    assert r.returncode == 0, r.stderr
    doc = gp_json(r.stdout)
    assert doc["samples"]["requested_rate_hz"] == 100
    nat = doc["sampler"]["native"]
    assert nat["thread_stops"] > 0 and nat["failed"] <= nat["thread_stops"] // 10
    assert 0 < nat["pause_p50_us"] <= nat["pause_p99_us"] <= nat["pause_max_us"]
    assert nat["pause_max_us"] <= nat["sample_pause_max_us"] + 1e-6
    # The top GIL-wait stacks of the spinning threads start in C.
    spin_tids = set(cpu4.info["tids"].values())
    native_top = 0
    for t in doc["threads"]:
        if t["tid"] not in spin_tids:
            continue
        for s in t["top_stacks"].get("gil_wait", []):
            if s["frames"] and s["frames"][0]["file"].startswith("["):
                native_top += 1
    assert native_top >= 2
    assert_not_stopped(cpu4.pid)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_no_thread_left_stopped_after_signal(cpu4, sig):
    p = subprocess.Popen([GILPROBE, "-p", str(cpu4.pid), "--native", "-r", "1000", "-d", "30",
                          "--no-bpf", "-o", os.devnull],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    p.send_signal(sig)
    p.wait(timeout=10)
    assert_not_stopped(cpu4.pid)
    # And they run: the spinners keep using CPU.
    before = open("/proc/%d/stat" % cpu4.pid).read().rsplit(")", 1)[1].split()
    time.sleep(0.3)
    after = open("/proc/%d/stat" % cpu4.pid).read().rsplit(")", 1)[1].split()
    assert int(after[11]) + int(after[12]) > int(before[11]) + int(before[12])
