"""The CPython interpreters every test runs against, in one place.

pyenv's 3.8-3.13 under $(pyenv root)/versions, Debian's stripped
/usr/bin/python3.11 and CPython 3.14 and 3.15 in a Debian unstable chroot
(tests/setup/unstable_chroot.sh, which `make test` runs first) are expected
on every machine of this project; a missing one is an error (the tests fail
and say so), never a skip.
"""
import fcntl
import glob
import os
import shutil
import subprocess

EXPECTED_PYENV_MINORS = (8, 9, 10, 11, 12, 13)
SYSTEM_PYTHON = "/usr/bin/python3.11"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("GILPROBE_CACHE", "/var/cache/gilprobe")
CHROOT = os.path.join(CACHE, "unstable-chroot")
CHROOT_MINORS = ("3.14", "3.15")
# What the interpreters run: copied into the chroot under the same path.
SHARED_DIRS = ("tests", "examples", "bench")


def sync_into_chroot():
    """Copies the scripts into the chroot at their own absolute paths, so a
    path means the same file inside and outside (once per change; under a
    lock, as test workers start together)."""
    dest_root = CHROOT + ROOT
    os.makedirs(dest_root, exist_ok=True)
    with open(os.path.join(CHROOT, ".gilprobe-sync.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for d in SHARED_DIRS:
            shutil.copytree(os.path.join(ROOT, d), os.path.join(dest_root, d), dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))


def pyenv_root():
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return os.path.expanduser("~/.pyenv")


def interpreters():
    """[(label, path)] and a list of problems (missing interpreters)."""
    found, missing = [], []
    root = pyenv_root()
    for minor in EXPECTED_PYENV_MINORS:
        paths = sorted(glob.glob(os.path.join(root, "versions", "3.%d.*" % minor, "bin",
                                              "python3.%d" % minor)))
        paths = [p for p in paths if "t/bin" not in p]
        if paths:
            found.append(("pyenv-3.%d" % minor, paths[-1]))
        else:
            missing.append("pyenv CPython 3.%d (expected under %s/versions)" % (minor, root))
    if os.access(SYSTEM_PYTHON, os.X_OK):
        found.append(("debian-3.11", SYSTEM_PYTHON))
    else:
        missing.append("Debian's %s (apt-get install python3.11)" % SYSTEM_PYTHON)
    for minor in CHROOT_MINORS:
        if os.access(os.path.join(CHROOT, "usr", "bin", "python" + minor), os.X_OK):
            sync_into_chroot()
            found.append(("unstable-" + minor, os.path.join(ROOT, "tests", "setup", "python" + minor)))
        else:
            missing.append("CPython %s in %s (run tests/setup/unstable_chroot.sh)" % (minor, CHROOT))
    return found, missing


# Free-threaded builds (--disable-gil) the tests expect, each built by
# `tests/setup/freethreaded.sh MINOR` (which `make test` runs) into
# $GILPROBE_CACHE/python<MINOR>t.
FREE_THREADED_MINORS = ("3.13",)


def free_threaded_python(minor):
    return os.path.join(CACHE, "python%st" % minor, "bin", "python%st" % minor)


def free_threaded_missing(minor):
    """Why the free-threaded build of `minor` cannot be used, or None."""
    path = free_threaded_python(minor)
    if os.access(path, os.X_OK):
        return None
    return ("free-threaded CPython %st at %s (run tests/setup/freethreaded.sh %s)"
            % (minor, path, minor))


def free_threaded():
    """[(label, path)] of the free-threaded builds ("3.13t", ...) and the
    problems (missing ones)."""
    found, missing = [], []
    for minor in FREE_THREADED_MINORS:
        problem = free_threaded_missing(minor)
        if problem:
            missing.append(problem)
        else:
            found.append((minor + "t", free_threaded_python(minor)))
    return found, missing
