"""The CPython interpreters every test runs against, in one place.

pyenv's 3.8-3.13 under $(pyenv root)/versions and Debian's stripped
/usr/bin/python3.11 are expected on every machine of this project; a
missing one is an error (the tests fail and say so), never a skip.
"""
import glob
import os
import subprocess

EXPECTED_PYENV_MINORS = (8, 9, 10, 11, 12, 13)
SYSTEM_PYTHON = "/usr/bin/python3.11"


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
    return found, missing
