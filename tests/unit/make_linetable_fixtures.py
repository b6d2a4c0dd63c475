"""Writes one line-table fixture per interpreter into the given folder,
produced by the interpreter itself (tests/unit/emit_linetable.py)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from interpreters import interpreters  # noqa: E402


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    found, missing = interpreters()
    if missing:
        sys.exit("line-table fixtures: missing interpreters: " + "; ".join(missing))
    emit = os.path.join(os.path.dirname(os.path.abspath(__file__)), "emit_linetable.py")
    for label, path in found:
        with open(os.path.join(out_dir, label + ".txt"), "w") as f:
            subprocess.run([path, emit], stdout=f, check=True)
    print("line-table fixtures: %s" % ", ".join(label for label, _ in found))


if __name__ == "__main__":
    main()
