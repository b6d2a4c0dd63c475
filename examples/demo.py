"""`make demo`: start examples/demo_app.py and show `gilprobe dump` of it."""
import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def pick_python():
    root = subprocess.run(["sh", "-c", "pyenv root 2>/dev/null || echo ~/.pyenv"],
                          capture_output=True, text=True).stdout.strip()
    found = sorted(glob.glob(os.path.join(root, "versions", "3.1[0-3].*", "bin", "python3.1?")))
    return found[-1] if found else "/usr/bin/python3"


def main():
    gilprobe = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "./gilprobe")
    python = pick_python()
    app = subprocess.Popen([python, os.path.join(HERE, "demo_app.py"), "--seconds", "60"],
                           stdout=subprocess.PIPE, text=True)
    try:
        line = app.stdout.readline()
        if not line.startswith("ready"):
            sys.exit("demo: the example app did not start")
        print("$ gilprobe dump -p %d      # %s examples/demo_app.py\n" % (app.pid, python),
              flush=True)
        r = subprocess.run([gilprobe, "dump", "-p", str(app.pid)])
        return r.returncode
    finally:
        app.kill()
        app.wait()


if __name__ == "__main__":
    sys.exit(main())
