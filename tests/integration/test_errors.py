"""Every documented failure: one line on stderr naming what failed, why and
what to do, and its documented exit code (README "Exit codes")."""
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import GILPROBE, ROOT, Workload, pyenv_root_versions, run_gilprobe

EXIT_USAGE, EXIT_NO_PROCESS, EXIT_PERMISSION, EXIT_NOT_PYTHON = 2, 3, 4, 5
EXIT_UNSUPPORTED, EXIT_EXITED, EXIT_OUTPUT = 6, 7, 8


def one_line_error(r):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("gilprobe: ")
    return lines[0]


@pytest.fixture(scope="module")
def idle_python():
    w = Workload(sys.executable, "idle.py")
    yield w
    w.stop()


@pytest.mark.parametrize("args", [[], ["dump"], ["dump", "-p"], ["dump", "-p", "abc"],
                                  ["dump", "-p", "1", "--bogus"], ["frobnicate"],
                                  ["dump", "-p", "1", "extra"]])
def test_usage_errors(args):
    r = run_gilprobe(args)
    assert r.returncode == EXIT_USAGE
    if args:
        assert "gilprobe --help" in one_line_error(r)


def test_help_lists_exit_codes():
    r = run_gilprobe(["--help"])
    assert r.returncode == 0 and "exit codes" in r.stdout and "dump" in r.stdout


def test_no_such_process():
    p = subprocess.Popen(["true"])
    p.wait()
    r = run_gilprobe(["dump", "-p", str(p.pid)])
    assert r.returncode == EXIT_NO_PROCESS
    assert "no process with PID %d" % p.pid in one_line_error(r)


def test_not_a_python_process():
    p = subprocess.Popen(["sleep", "60"])
    try:
        time.sleep(0.1)
        r = run_gilprobe(["dump", "-p", str(p.pid)])
        assert r.returncode == EXIT_NOT_PYTHON
        assert "not a CPython process" in one_line_error(r)
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("minor", ["3.7", "2.7"])
def test_unsupported_version_is_refused_by_name(minor):
    paths = pyenv_root_versions(minor)
    assert paths, "pyenv CPython %s is expected on this machine for this test" % minor
    exe = paths[-1]
    p = subprocess.Popen([exe, "-c", "import time; print('ready'); time.sleep(60)"],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        full = subprocess.run([exe, "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True).stdout.strip()
        r = run_gilprobe(["dump", "-p", str(p.pid)])
        assert r.returncode == EXIT_UNSUPPORTED
        line = one_line_error(r)
        assert "Python %s" % (full if minor == "3.7" else "2.7") in line
        assert "not support" in line and "3.8" in line
    finally:
        p.kill()
        p.wait()


def test_permission_denied_for_unprivileged_user(idle_python, tmp_path):
    # A copy the unprivileged user can execute, wherever the clone lives.
    tmp_path.chmod(0o755)
    exe = tmp_path / "gilprobe"
    shutil.copy(GILPROBE, exe)
    exe.chmod(0o755)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        str(exe), "dump", "-p", str(idle_python.pid)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == EXIT_PERMISSION, r.stderr
    line = one_line_error(r)
    assert "permission denied" in line and "CAP_SYS_PTRACE" in line


def test_process_exits_while_being_read():
    w = Workload(sys.executable, "idle.py")
    try:
        p = subprocess.Popen([GILPROBE, "dump", "-p", str(w.pid)],
                             env=dict(os.environ, GILPROBE_TEST_PAUSE_MS="1500"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        w.proc.kill()
        out, err = p.communicate(timeout=20)
        assert p.returncode == EXIT_EXITED, err
        assert "exited while gilprobe was reading" in err
    finally:
        w.stop()


def test_unwritable_output(idle_python):
    r = run_gilprobe(["dump", "-p", str(idle_python.pid), "-o", "/nonexistent/dir/out.json"])
    assert r.returncode == EXIT_OUTPUT
    assert "/nonexistent/dir/out.json" in one_line_error(r)


def test_readme_documents_every_exit_code():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    for code, word in ((1, "internal"), (2, "usage"), (3, "no such process"), (4, "permission"),
                       (5, "not a Python"), (6, "not supported"), (7, "exited"), (8, "output")):
        assert "| %d |" % code in readme, code
