"""Shared fixtures: the gilprobe binary, the interpreters, workloads."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from interpreters import interpreters  # noqa: E402

WORKLOADS = os.path.join(ROOT, "tests", "workloads")
EXAMPLES = os.path.join(ROOT, "examples")
GILPROBE = os.path.abspath(os.environ.get("GILPROBE", os.path.join(ROOT, "gilprobe")))
GILPROBE_ASAN = os.path.join(ROOT, "build", "gilprobe-asan")

INTERPRETERS, MISSING_INTERPRETERS = interpreters()
# x86-64: select, pselect6 (time.sleep <= 3.10), nanosleep, clock_nanosleep
SLEEP_SYSCALLS = {"23", "270", "35", "230"}


def interpreter_params():
    """One pytest param per interpreter; each runs on one xdist worker so a
    workload started once serves all of that interpreter's tests."""
    return [pytest.param(path, id=label, marks=pytest.mark.xdist_group(label))
            for label, path in INTERPRETERS]


@pytest.fixture(params=interpreter_params())
def python(request):
    """Each interpreter, on its own xdist worker group (see above)."""
    return request.param


@pytest.fixture(params=[pytest.param(p, id=label) for label, p in INTERPRETERS])
def python_alone(request):
    """Each interpreter, for tests that join another group (e.g. the CPU-heavy
    one that runs one test at a time)."""
    return request.param


def marks(workload_file):
    """{name: line} of the `# MARK:name` comments in a workload."""
    out = {}
    with open(os.path.join(WORKLOADS, workload_file)) as f:
        for no, line in enumerate(f, 1):
            m = re.search(r"# MARK:(\w+)", line)
            if m:
                out[m.group(1)] = no
    return out


def python_version(path):
    return subprocess.run([path, "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True).stdout.strip()


class Example:
    """An example program (examples/NAME.py, run for `seconds`) in a
    session of its own, once it printed its ready line (with its pid)."""

    def __init__(self, python, name, args=(), prefix=(), seconds=60):
        self.proc = subprocess.Popen(list(prefix) + [python, os.path.join(EXAMPLES, name + ".py"),
                                                     "--seconds", str(seconds)] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read()
        self.ready = time.monotonic()
        self.pid = gp_json(line)["pid"]

    def stop(self):
        """Kills its session; returns what it printed after its ready line."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        return self.proc.stdout.read()


class Workload:
    def __init__(self, interpreter, script, args=(), ready_timeout=30, prefix=()):
        self.interpreter = interpreter
        self.proc = subprocess.Popen(list(prefix) + [interpreter, os.path.join(WORKLOADS, script)]
                                     + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        deadline = time.time() + ready_timeout
        self.info = None
        # A workload that stays alive without ever printing its line (a
        # thread of it died) would block readline for ever: killed at the
        # deadline, its stdout ends.
        watchdog = threading.Timer(ready_timeout, self.proc.kill)
        watchdog.start()
        try:
            while time.time() < deadline:
                line = self.proc.stdout.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("ready"):
                    self.info = msg
                    break
        finally:
            watchdog.cancel()
        if self.info is None:
            self.stop()
            raise RuntimeError("workload %s on %s never became ready: %s" % (
                script, interpreter, self.proc.stderr.read()))
        if prefix:
            # A wrapper (unshare --fork) started it: the workload is its child.
            with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                self.pid = int(f.read().split()[0])

    def wait_main_asleep(self, timeout=10):
        """After printing "ready" the main thread still has to get the GIL
        back before it sleeps; wait until it is in its sleep syscall."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open("/proc/%d/task/%d/syscall" % (self.pid, self.pid)) as f:
                nr = f.read().split()[0]
            if nr in SLEEP_SYSCALLS:
                return
            time.sleep(0.01)
        raise RuntimeError("main thread of %d never went to sleep" % self.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module", params=interpreter_params())
def known_threads(request):
    w = Workload(request.param, "known_threads.py")
    w.wait_main_asleep()
    yield w
    w.stop()


@pytest.fixture(scope="module", params=interpreter_params())
def known_threads_to_stop(request):
    """A separate instance for the ptrace tests: stopping a thread interrupts
    its sleep, which then shows as restart_syscall, so it must not be shared
    with tests that check what each thread is blocked in."""
    w = Workload(request.param, "known_threads.py")
    w.wait_main_asleep()
    yield w
    w.stop()


# nice: the priority gilprobe runs at (None: the tests' own). A sampler
# short of CPU misses its ticks mostly while the target runs (issue 14's
# note); test_bpf.py makes one so and checks that the report says it.


def run_gilprobe(args, binary=None, env=None, timeout=60, nice=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    prefix = ["nice", "-n", str(nice)] if nice is not None else []
    return subprocess.run(prefix + [binary or GILPROBE] + list(args), capture_output=True,
                          text=True, timeout=timeout, env=full_env)


SCHEMA_DIR = os.path.join(ROOT, "docs", "schema")
_validators = {}


def _validator(name):
    if name not in _validators:
        import jsonschema  # Debian's python3-jsonschema
        with open(os.path.join(SCHEMA_DIR, name + ".schema.json")) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        _validators[name] = jsonschema.Draft202012Validator(schema)
    return _validators[name]


def gp_json(text):
    """Parses JSON; a gilprobe report or dump (an object with "schema" and
    "command") is validated against its schema in docs/schema/ first, so
    every document a test reads is checked. Other JSON (workload lines,
    speedscope files) is returned as parsed."""
    doc = json.loads(text)
    if isinstance(doc, dict) and "schema" in doc and "command" in doc:
        name = "dump" if doc["command"] == "dump" else "report"
        errors = sorted(_validator(name).iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, "%s JSON does not match docs/schema/%s.schema.json: %s" % (
            doc["command"], name, "; ".join("%s: %s" % ("/".join(map(str, e.path)), e.message)
                                           for e in errors[:5]))
    return doc


def dump_json(pid, *extra, binary=None):
    r = run_gilprobe(["dump", "-p", str(pid), "--json"] + list(extra), binary=binary)
    assert r.returncode == 0, "gilprobe failed (%d): %s" % (r.returncode, r.stderr)
    return gp_json(r.stdout)


def task_states(pid):
    """{tid: state letter} of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                out[int(tid)] = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            pass
    return out


def cpu_ticks(pid, tid):
    with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def pyenv_root_versions(minor):
    """Paths of pyenv's python<minor> executables, oldest first."""
    import glob
    from interpreters import pyenv_root
    return sorted(glob.glob(os.path.join(pyenv_root(), "versions", minor + ".*", "bin",
                                         "python" + minor)))


class HalfCpu:
    """A cgroup whose processes get half a CPU (or `share` of one) between them (cgroup v2's
    cpu.max, or v1's CFS quota where that is what the machine mounts): a
    target started under `prefix` runs about half as fast as the machine,
    the way a slower machine or a container with a quota would run it."""

    PERIOD_US = 100000

    def __init__(self, name, share=0.5):
        quota = int(self.PERIOD_US * share)
        v2 = "/sys/fs/cgroup/cgroup.controllers"
        if os.path.exists(v2) and "cpu" in open(v2).read().split():
            self.path = os.path.join("/sys/fs/cgroup", name)
            os.makedirs(self.path, exist_ok=True)
            with open(os.path.join(self.path, "cpu.max"), "w") as f:
                f.write("%d %d" % (quota, self.PERIOD_US))
        elif os.path.exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
            self.path = os.path.join("/sys/fs/cgroup/cpu", name)
            os.makedirs(self.path, exist_ok=True)
            with open(os.path.join(self.path, "cpu.cfs_period_us"), "w") as f:
                f.write(str(self.PERIOD_US))
            with open(os.path.join(self.path, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(quota))
        else:
            raise RuntimeError("no cgroup cpu controller (v2 cpu.max or v1 cpu.cfs_quota_us) "
                               "to slow a target down with; the tests need one (run as root)")
        # The wrapper joins the cgroup, then becomes the target.
        self.prefix = ["sh", "-c", 'echo $$ > "%s" && exec "$@"'
                       % os.path.join(self.path, "cgroup.procs"), "sh"]

    def close(self):
        for _ in range(50):  # its last processes may still be exiting
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)
        os.rmdir(self.path)


@pytest.fixture(scope="module")
def half_cpu():
    cg = HalfCpu("gilprobe-tests-%d" % os.getpid())
    yield cg
    cg.close()


@pytest.fixture(scope="module")
def tenth_cpu():
    """An oversubscribed machine: a tenth of a CPU for the target."""
    cg = HalfCpu("gilprobe-tests-tenth-%d" % os.getpid(), share=0.1)
    yield cg
    cg.close()
