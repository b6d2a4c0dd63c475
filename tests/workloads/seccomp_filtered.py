"""Two threads in a pure-Python loop, under a seccomp filter (as systemd's
SystemCallFilter= or a container profile would put it): libseccomp's
Python binding (Debian's python3-seccomp, for /usr/bin/python3.11) loads a
filter that refuses one call and allows the rest. Prints its ready line
once the filter is on (Seccomp: 2 in /proc/self/status)."""
import json
import os
import threading

import seccomp


def spin():
    n = 0
    while True:
        n += 1


f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
f.add_rule(seccomp.ERRNO(1), "acct")
f.load()
with open("/proc/self/status") as status:
    filtered = any(line.split() == ["Seccomp:", "2"] for line in status)
for _ in range(2):
    threading.Thread(target=spin, daemon=True).start()
print(json.dumps({"ready": True, "pid": os.getpid(), "filtered": filtered}), flush=True)
threading.Event().wait()
