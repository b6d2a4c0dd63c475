"""`gilprobe top -p PID`: the live view, driven in a real terminal (tmux) and
through a pipe, against contention.py cpu4 (4 threads in a pure-Python loop:
the GIL is always held). Every wait polls: the machine may be loaded."""
import itertools
import os
import re
import signal
import subprocess
import time

import pytest
from conftest import GILPROBE, INTERPRETERS, Workload, run_gilprobe


def _interpreter():
    by_label = dict(INTERPRETERS)
    return by_label.get("pyenv-3.12") or INTERPRETERS[0][1]


@pytest.fixture(scope="module")
def cpu4():
    w = Workload(_interpreter(), "contention.py", ["cpu4"])
    yield w
    w.stop()


@pytest.fixture(scope="module")
def tmux():
    """A tmux server of our own (its own socket): nobody else's sessions.
    A keeper session holds the server up for the whole module: a server
    left without sessions exits, and a new-session that connects while it
    is exiting fails with "server exited unexpectedly" (seen once in CI)."""
    server = Tmux("gilprobe-top-test-%d" % os.getpid())
    server.run("new-session", "-d", "-s", "keeper", "sleep", "3600")
    yield server
    server.run("kill-server", check=False)


class Tmux:
    def __init__(self, socket):
        self.socket = socket
        self.names = itertools.count()

    def run(self, *args, check=True):
        env = dict(os.environ, TERM="xterm")
        return subprocess.run(["tmux", "-L", self.socket] + list(args), capture_output=True,
                              text=True, check=check, env=env, timeout=30)

    def start(self, command):
        """A 160x50 pane running command, then its exit code and the
        terminal settings (stty -a) once it ends."""
        name = "top%d" % next(self.names)
        shell = "%s; echo EXIT=$?; stty -a; sleep 60" % command
        self.run("new-session", "-d", "-s", name, "-x", "160", "-y", "50", "sh", "-c", shell)
        return Pane(self, name)


class Pane:
    def __init__(self, tmux, name):
        self.tmux = tmux
        self.name = name

    def text(self):
        return self.tmux.run("capture-pane", "-p", "-J", "-t", self.name).stdout

    def keys(self, *keys):
        self.tmux.run("send-keys", "-t", self.name, *keys)

    def wait_for(self, predicate, timeout, what):
        deadline = time.time() + timeout
        text = ""
        while time.time() < deadline:
            text = self.text()
            if predicate(text):
                return text
            time.sleep(0.05)
        raise AssertionError("%s not seen within %.1f s; pane:\n%s" % (what, timeout, text))

    def gilprobe_pid(self):
        """gilprobe is the child of the pane's shell."""
        shell = int(self.tmux.run("display-message", "-p", "-t", self.name,
                                  "#{pane_pid}").stdout.strip())
        with open("/proc/%d/task/%d/children" % (shell, shell)) as f:
            children = [int(c) for c in f.read().split()]
        for c in children:
            with open("/proc/%d/cmdline" % c, "rb") as f:
                if b"top" in f.read():
                    return c
        raise AssertionError("no gilprobe under the pane's shell %d: %s" % (shell, children))

    def close(self):
        self.tmux.run("kill-session", "-t", self.name, check=False)


# TID NAME HELD% GILW% LOCK% IDLE% IO% SLEEP% NOGIL% CPU% FRAME
ROW = re.compile(r"^(\d+)\s+(.+?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
                 r"\s+([\d.]+)\s+([\d.]+)\s+(\S+)\s+(.*)$")


def rows(text):
    """[(tid, name, held%, gil-wait%, ..., frame)] in screen order."""
    out = []
    for line in text.splitlines():
        m = ROW.match(line.strip())
        if m:
            out.append((int(m.group(1)), m.group(2), float(m.group(3)), float(m.group(4)),
                        m.group(11)))
    return out


def held_pct(text):
    m = re.search(r"GIL held\s+([\d.]+)%", text)
    return float(m.group(1)) if m else None


def shows_threads(tids):
    def check(text):
        return set(tids) <= {r[0] for r in rows(text)} and held_pct(text) is not None
    return check


def exit_code(text):
    m = re.search(r"^EXIT=(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def assert_terminal_restored(pane):
    text = pane.wait_for(lambda t: "icanon" in t and "EXIT=" in t, 5, "stty -a output")
    settings = set(re.split(r"[\s;]+", text[text.index("EXIT="):]))
    assert "icanon" in settings and "-icanon" not in settings, text
    assert "echo" in settings and "-echo" not in settings, text


def top_command(pid, *extra):
    return " ".join([GILPROBE, "top", "-p", str(pid)] + list(extra))


def test_view_shows_threads_and_q_quits(cpu4, tmux):
    tids = list(cpu4.info["tids"].values())
    pane = tmux.start(top_command(cpu4.pid))
    try:
        text = pane.wait_for(shows_threads(tids), 20, "a row for each of the 4 threads")
        # One thread always runs Python code: the GIL is always held.
        assert held_pct(text) >= 80, text
        assert "q quit" in text and "sorted by gil-wait" in text, text
        by_tid = {r[0]: r for r in rows(text)}
        for name, tid in cpu4.info["tids"].items():
            # Its Python name, then the OS name the workload gave it.
            assert by_tid[tid][1].startswith("Thread-") and by_tid[tid][1].endswith(
                "[%s]" % name), by_tid[tid]
            assert by_tid[tid][4].startswith("spin (contention.py:"), by_tid[tid]
        start = time.time()
        pane.keys("q")
        text = pane.wait_for(lambda t: exit_code(t) is not None, 5, "gilprobe's exit")
        assert time.time() - start <= 2.0, "q took %.2f s" % (time.time() - start)
        assert exit_code(text) == 0, text
        assert_terminal_restored(pane)
    finally:
        pane.close()


def test_sort_keys_reorder_rows(cpu4, tmux):
    tids = list(cpu4.info["tids"].values())
    pane = tmux.start(top_command(cpu4.pid))
    try:
        pane.wait_for(shows_threads(tids), 20, "a row for each of the 4 threads")
        pane.keys("t")
        text = pane.wait_for(lambda t: "sorted by tid" in t, 5, "the tid sort")
        order = [r[0] for r in rows(text)]
        assert set(tids) <= set(order) and order == sorted(order), text
        pane.keys("h")
        text = pane.wait_for(lambda t: "sorted by held" in t, 5, "the held sort")
        held = [r[2] for r in rows(text)]
        assert len(held) >= 4 and held == sorted(held, reverse=True), text
        pane.keys("q")
        assert exit_code(pane.wait_for(lambda t: exit_code(t) is not None, 5, "exit")) == 0
    finally:
        pane.close()


def test_sigterm_exits_and_restores_terminal(cpu4, tmux):
    tids = list(cpu4.info["tids"].values())
    pane = tmux.start(top_command(cpu4.pid, "-i", "0.5"))
    try:
        pane.wait_for(shows_threads(tids), 20, "a row for each of the 4 threads")
        os.kill(pane.gilprobe_pid(), signal.SIGTERM)
        text = pane.wait_for(lambda t: exit_code(t) is not None, 5, "gilprobe's exit")
        assert exit_code(text) == 0, text
        assert_terminal_restored(pane)
    finally:
        pane.close()


BEHIND = re.compile(r"^(?:waits behind: )?(\d+) (.+?) waited (\d+) ms for the GIL, behind: (.*)$",
                    re.M)


def behind_line(text):
    """(tid, the holders text) of the "waits behind" line, or None."""
    m = BEHIND.search(text)
    return (int(m.group(1)), m.group(4)) if m else None


def check_behind(holders):
    """Each of 4 spinning threads waits behind the other three, in spin():
    the line names at least two holders (Python name, function, share)."""
    named = re.findall(r"Thread-\d+ \(spin\) spin (\d+)%", holders)
    assert len(named) >= 2, holders


def test_up_down_select_the_thread_whose_waits_are_explained(cpu4, tmux):
    tids = list(cpu4.info["tids"].values())
    pane = tmux.start(top_command(cpu4.pid, "-i", "0.5"))
    try:
        text = pane.wait_for(lambda t: shows_threads(tids)(t) and behind_line(t), 20,
                             "the rows and a waits-behind line")
        first = behind_line(text)[0]
        assert first == rows(text)[0][0], text  # the first row at the start
        check_behind(behind_line(text)[1])
        pane.keys("Down")
        text = pane.wait_for(lambda t: behind_line(t) and behind_line(t)[0] != first, 5,
                             "the selection moved down")
        second = behind_line(text)[0]
        assert second in tids, text
        # it stays on that thread while the rows re-sort
        text = pane.wait_for(lambda t: behind_line(t) and "sorted by" in t, 5, "a redraw")
        time.sleep(1.2)
        assert behind_line(pane.text())[0] == second, pane.text()
        pane.keys("q")
        assert exit_code(pane.wait_for(lambda t: exit_code(t) is not None, 5, "exit")) == 0
    finally:
        pane.close()


def test_thread_option_explains_one_thread_in_plain_blocks(cpu4):
    tid = cpu4.info["tids"]["spin-2"]
    r = run_gilprobe(["top", "-p", str(cpu4.pid), "-n", "1", "-i", "0.5", "--thread", str(tid)],
                     timeout=60)
    assert r.returncode == 0, r.stderr
    line = behind_line(r.stdout)
    assert line and line[0] == tid, r.stdout
    check_behind(line[1])
    # the other threads are named by their Python names, and never itself
    own = [row[1] for row in rows(r.stdout) if row[0] == tid][0]
    assert own.split(" [")[0] + " spin" not in line[1], (own, line)


def test_not_a_terminal_prints_plain_blocks(cpu4):
    r = run_gilprobe(["top", "-p", str(cpu4.pid), "-n", "2", "-i", "0.5"], timeout=60)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout  # no terminal control sequences
    blocks = re.split(r"^=== .* ===$", r.stdout, flags=re.M)
    assert blocks[0] == "" and len(blocks) == 3, r.stdout
    for block in blocks[1:]:
        assert set(cpu4.info["tids"].values()) <= {row[0] for row in rows(block)}, block
        assert held_pct(block) >= 80, block


def test_loop_stalls_per_interval():
    """asyncio_loop.py sleep: every second the loop blocks in time.sleep(0.3);
    an interval of 2.5 s sees at least two such stalls end, each ~300 ms."""
    w = Workload(_interpreter(), "asyncio_loop.py", ["sleep"])
    try:
        r = run_gilprobe(["top", "-p", str(w.pid), "-n", "2", "-i", "2.5"], timeout=60)
    finally:
        w.stop()
    assert r.returncode == 0, r.stderr
    stalls = re.findall(r"loop stalls (\d+) \(max (\d+) ms\) in 1 event loop", r.stdout)
    assert len(stalls) == 2, r.stdout
    for count, max_ms in stalls:
        assert 2 <= int(count) <= 3 and 250 <= int(max_ms) <= 500, r.stdout
    assert w.info["tids"]["loop-0"] in {row[0] for row in rows(r.stdout)}


def test_loop_tasks_and_expired_timeouts_per_interval():
    """asyncio_loop.py timeouts: about fourteen tasks for ever, and a 300 ms
    stall every second that makes wait_for timeouts expire: each 2.5 s
    interval shows the task count and the timeouts expired in it."""
    w = Workload(_interpreter(), "asyncio_loop.py", ["timeouts"])
    try:
        r = run_gilprobe(["top", "-p", str(w.pid), "-n", "2", "-i", "2.5"], timeout=60)
    finally:
        w.stop()
    assert r.returncode == 0, r.stderr
    found = re.findall(r"in 1 event loop, (\d+) tasks, (\d+) timeouts? expired late", r.stdout)
    assert len(found) == 2, r.stdout
    for tasks, expired in found:
        assert 12 <= int(tasks) <= 24 and int(expired) >= 1, r.stdout


def test_target_exit_ends_top():
    proc = subprocess.Popen([_interpreter(), "-c", "import time; time.sleep(3)"])
    try:
        time.sleep(0.5)
        r = run_gilprobe(["top", "-p", str(proc.pid), "-i", "0.5"], timeout=30)
        assert r.returncode == 0, r.stderr
        assert "process %d exited" % proc.pid in r.stderr
        assert "=== " in r.stdout
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("args,message", [
    (["--sort", "bogus"], "gil-wait, held, cpu, lock, tid, name"),
    (["-i", "0"], "-i wants seconds"),
    (["-n", "1.5"], "-n wants a whole number"),
])
def test_usage_errors(args, message):
    r = run_gilprobe(["top", "-p", str(os.getpid())] + args)
    assert r.returncode == 2, r
    assert message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stdout == ""


def test_needs_a_pid():
    r = run_gilprobe(["top"])
    assert r.returncode == 2 and "top needs -p PID" in r.stderr, r.stderr
