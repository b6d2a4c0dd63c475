"""`make demo`: start examples/demo_app.py, show one `gilprobe dump` of it
(what each thread is doing now), then the main job: `gilprobe -p PID`
sampling it for a few seconds, whose report ends with its Diagnosis."""
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
        print("# the demo app: %s examples/demo_app.py (PID %d)\n" % (python, app.pid))
        print("$ gilprobe dump -p %d      # one snapshot of every thread\n" % app.pid, flush=True)
        r = subprocess.run([gilprobe, "dump", "-p", str(app.pid)])
        if r.returncode:
            return r.returncode
        print("\n$ gilprobe -p %d -d 3      # where the GIL goes, and what is wrong\n" % app.pid,
              flush=True)
        return subprocess.run([gilprobe, "-p", str(app.pid), "-d", "3"]).returncode
    finally:
        app.kill()
        app.wait()


if __name__ == "__main__":
    sys.exit(main())
