"""Forces PID reuse under a running gilprobe, deterministically. Run inside
a new PID namespace (unshare --pid --fork --mount-proc), where this script
can choose the next PID through /proc/sys/kernel/ns_last_pid:

1. start the target (idle.py) and gilprobe on it;
2. pause gilprobe (SIGSTOP for `-p`; GILPROBE_TEST_PAUSE_MS for dump,
   between attaching and reading), kill and reap the target;
3. start another Python process (known_threads.py) under the very same PID;
4. let gilprobe go on, and print one JSON line: the PIDs and gilprobe's
   exit code, stdout and stderr.

Usage: pid_reuse.py GILPROBE PYTHON dump|sample [GILPROBE ARGS...]"""
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
gilprobe, python, mode = sys.argv[1], sys.argv[2], sys.argv[3]
extra = sys.argv[4:]


def start(script):
    p = subprocess.Popen([python, os.path.join(HERE, script)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if '"ready"' in line:
            return p
    raise RuntimeError("%s never became ready" % script)


first = start("idle.py")
env = dict(os.environ)
if mode == "dump":
    env["GILPROBE_TEST_PAUSE_MS"] = "2000"
    args = ["dump", "-p", str(first.pid), "--json"]
else:
    args = ["-p", str(first.pid), "-d", "4", "--json"]
g = subprocess.Popen([gilprobe] + args + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True, env=env)
time.sleep(1.0)  # attached (dump: pausing; -p: sampling)
if mode != "dump":
    os.kill(g.pid, signal.SIGSTOP)
first.kill()
first.wait()
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(first.pid - 1))
second = start("known_threads.py")
time.sleep(0.3)
if mode != "dump":
    os.kill(g.pid, signal.SIGCONT)
out, err = g.communicate(timeout=60)
second.kill()
second.wait()
print(json.dumps({"first": first.pid, "second": second.pid, "rc": g.returncode,
                  "stdout": out, "stderr": err}))
