"""A CPython version gilprobe has no generated table for is read through
the _Py_DebugOffsets block the process carries (issue 16): proven on 3.15
with its table withheld (GILPROBE_TEST_WITHHOLD_LAYOUT, the test switch),
on a recorded 3.15 memory image whose version is raised to one that does
not exist yet, and refused clearly when the block is corrupted. Versions
without the block (before 3.13) keep their refusal."""
import os
import re
import struct
import subprocess

import pytest
from conftest import INTERPRETERS, ROOT, Workload, gp_json, run_gilprobe
from test_dump import by_tid, check_known_threads

PY315 = dict(INTERPRETERS)["unstable-3.15"]
WITHHELD = {"GILPROBE_TEST_WITHHOLD_LAYOUT": "3.15"}
REPLAY = os.path.join(ROOT, "build", "replay_image")
SEED = os.path.join(ROOT, "fuzz", "corpus", "seed-unstable-3.15-known_threads")
UNSUPPORTED = 6  # docs/reference.md, exit codes


def layout_value(name):
    """A value of the 3.15 table (the generated layouts, from its headers)."""
    text = open(os.path.join(ROOT, "src", "python", "layouts_generated.c")).read()
    entry = text[text.index('"3.15.'):]
    return int(re.search(r"\.%s = (-?\d+)," % name, entry).group(1))


def dbg_position(field):
    """Where the 3.15 table places `field` inside _Py_DebugOffsets."""
    return layout_value("dbg_" + field)


@pytest.fixture(scope="module")
def known_315():
    w = Workload(PY315, "known_threads.py")
    w.wait_main_asleep()
    yield w
    w.stop()


def dump(pid, env=None):
    r = run_gilprobe(["dump", "-p", str(pid), "--json"], env=env)
    assert r.returncode == 0, r.stderr
    return gp_json(r.stdout), r.stderr


def comparable(doc):
    """What both readings must agree on: every thread, its frames and
    lines, its state, what it is blocked on, and the GIL's holder - except
    the busy spinner's line and holding, which move between two dumps."""
    out = {}
    for tid, t in by_tid(doc).items():
        frames = [(f["function"], f["file"], f["line"]) for f in t["frames"]]
        busy = t["blocked_on"] is None and not t["is_main"]
        out[tid] = (t["name"], t["state"] if not busy else "busy", t["blocked_on"],
                    frames[1:] if busy else frames, t["frames_complete"])
    return out


def test_315_read_without_its_table_gives_the_same_dump(known_315):
    known, known_err = dump(known_315.pid)
    unknown, warning = dump(known_315.pid, WITHHELD)
    assert known["python"]["untested_version"] is False
    assert known["python"]["layout"] == "_Py_DebugOffsets"
    assert unknown["python"]["untested_version"] is True
    assert unknown["python"]["layout"] == "_Py_DebugOffsets only"
    assert "warning" not in known_err
    assert len(warning.strip().splitlines()) == 1, warning
    assert "not tested on" in warning and "_Py_DebugOffsets" in warning
    assert "Python 3.15" in warning
    check_known_threads(known, known_315)
    check_known_threads(unknown, known_315, interval_ms=None)
    assert comparable(unknown) == comparable(known)
    # What the block does not publish is null, not a guess.
    assert unknown["gil"]["switch_number"] is None
    assert known["gil"]["switch_number"] is not None
    # The GIL is read through the block's own offsets: the CPU-bound
    # spinner holds it in most dumps, as with the table (test_dump.py).
    spinner = known_315.info["tids"]["spinner"]
    holders = [dump(known_315.pid, WITHHELD)[0]["gil"]["holder_tid"] for _ in range(5)]
    assert holders.count(spinner) >= 3, holders


def test_315_sampled_and_exact_without_its_table(known_315):
    r = run_gilprobe(["-p", str(known_315.pid), "-d", "2", "--json"], env=WITHHELD)
    assert r.returncode == 0, r.stderr
    doc = gp_json(r.stdout)
    assert doc["python"]["untested_version"] is True
    gil = doc["gil"]
    assert gil["handoffs_per_s"] is None and gil["switch_interval_ms"] is None
    threads = {t["tid"]: t for t in doc["threads"]}
    tids = known_315.info["tids"]
    # The spinner holds the GIL alone (the others sleep, wait on a lock
    # or read a socket): ~100% held, nobody waits.
    assert gil["held_pct"] >= 80, gil
    assert threads[tids["spinner"]]["gil_held_pct"] >= 80, threads[tids["spinner"]]
    assert threads[tids["waiter"]]["lock_wait_pct"] >= 95
    assert threads[tids["reader"]]["io_wait_pct"] >= 95
    x = doc["gil_exact"]
    assert x is not None, doc["gil_exact_unavailable"]
    assert x["consistent"] is True, x["check"]
    assert x["held_pct"] >= 80, x


def test_315_text_report_says_what_is_not_measured(known_315):
    r = run_gilprobe(["-p", str(known_315.pid), "-d", "1"], env=WITHHELD)
    assert r.returncode == 0, r.stderr
    assert "untested version, read through its _Py_DebugOffsets" in r.stdout
    assert "hand-offs    not measured (not published by this version's _Py_DebugOffsets)" \
        in r.stdout
    assert r.stderr.count("warning") == 1, r.stderr
    top = run_gilprobe(["top", "-p", str(known_315.pid), "-n", "1", "-i", "0.5"], env=WITHHELD)
    assert top.returncode == 0, top.stderr
    assert "hand-offs not measured" in top.stdout, top.stdout
    assert "untested version" in top.stdout, top.stdout


def patched(data, version=None, at=None, value=None):
    """A copy of a memory image (fuzz/image.h) with the 8 bytes of its
    _Py_DebugOffsets block at `at` (or its version) set to `value`."""
    runtime = struct.unpack_from("<Q", data, 8)[0]
    target = runtime + (8 if version is not None else at)
    value = version if version is not None else value
    out = bytearray(data)
    pos = 32
    while pos + 12 <= len(out):
        addr, length = struct.unpack_from("<QI", out, pos)
        pos += 12
        if addr <= target and target + 8 <= addr + length:
            struct.pack_into("<Q", out, pos + target - addr, value)
            return bytes(out)
        pos += length
    raise AssertionError("no region holds 0x%x" % target)


def replay(tmp_path, data):
    path = tmp_path / "image"
    path.write_bytes(data)
    return subprocess.run([REPLAY, str(path)], capture_output=True, text=True, timeout=30)


def test_replayed_image_of_an_unseen_version(tmp_path):
    data = open(SEED, "rb").read()
    as_recorded = replay(tmp_path, data)
    assert as_recorded.returncode == 0, as_recorded.stderr
    lines = as_recorded.stdout.splitlines()
    assert lines[0] == "python 3.15.2 layout generated"
    assert sum(" name=MainThread |" in l for l in lines) == 1, lines
    assert sum(re.search(r" name=Thread-\d+ \(spin\) \|", l) is not None for l in lines) == 1
    # 3.16.0 final: PY_VERSION_HEX 0x031000f0.
    unseen = replay(tmp_path, patched(data, version=0x031000F0))
    assert unseen.returncode == 0, unseen.stderr
    got = unseen.stdout.splitlines()
    assert got[0] == "python 3.16.0 layout _Py_DebugOffsets-only"
    # The same threads, frames and lines, and the same GIL holder; no names:
    # where a dict's entries are is not published in the block.
    assert all(" name=- |" in l for l in got[2:]), got
    assert [re.sub(r" name=[^|]*\|", " |", l) for l in got[1:]] == \
        [re.sub(r" name=[^|]*\|", " |", l) for l in lines[1:]]
    assert sum("known_threads.py" in l for l in got) == 6, got


@pytest.mark.parametrize("field,value,message", [
    ("ts_native_thread_id", 1 << 40, "thread_state.native_thread_id"),
    ("iframe_previous", 100000, "interpreter_frame.previous"),
    ("sec_tstate", 0, "thread_state.size (0) is not a plausible size"),
    ("sec_code", 1 << 33, "code_object.size"),
    ("interp_gil_locked", 1 << 30, "GIL fields"),
    # A block whose thread_state fields moved by one (as 3.15's did against
    # 3.14's): in bounds, but the thread states do not hold together.
    ("ts_native_thread_id", "ts_thread_id", "thread states it describes do not hold together"),
])
def test_corrupted_block_is_refused(tmp_path, field, value, message):
    data = patched(open(SEED, "rb").read(), version=0x031000F0)
    if isinstance(value, str):
        value = layout_value(value)
    r = replay(tmp_path, patched(data, at=dbg_position(field), value=value))
    assert r.returncode == UNSUPPORTED, (r.stdout, r.stderr)
    assert r.stdout == ""
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("gilprobe: process ") and "Python 3.16.0" in err, err
    assert "_Py_DebugOffsets cannot be used" in err and message in err, err


def test_live_process_with_a_corrupted_block():
    script = os.path.join(ROOT, "tests", "workloads", "corrupt_debug_offsets.py")
    assert os.path.exists(script)
    w = Workload(PY315, "corrupt_debug_offsets.py", [str(dbg_position("ts_native_thread_id"))])
    try:
        refused = run_gilprobe(["dump", "-p", str(w.pid)], env=WITHHELD)
        known = run_gilprobe(["dump", "-p", str(w.pid), "--json"])
    finally:
        w.stop()
    assert refused.returncode == UNSUPPORTED, refused.stderr
    assert refused.stdout == ""
    assert "thread_state.native_thread_id" in refused.stderr
    assert "use a supported interpreter" in refused.stderr
    # With its table, the corrupted block is not preferred over it.
    assert known.returncode == 0, known.stderr
    doc = gp_json(known.stdout)
    assert doc["python"]["layout"] == "generated table"
    assert doc["threads"][0]["frames"], doc["threads"]


def test_version_without_a_block_keeps_its_refusal():
    python = dict(INTERPRETERS)["pyenv-3.12"]
    w = Workload(python, "known_threads.py")
    try:
        r = run_gilprobe(["dump", "-p", str(w.pid)], env={"GILPROBE_TEST_WITHHOLD_LAYOUT": "3.12"})
    finally:
        w.stop()
    assert r.returncode == UNSUPPORTED, r.stderr
    assert "runs Python 3.12" in r.stderr and "does not support" in r.stderr, r.stderr
