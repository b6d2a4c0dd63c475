"""Records fuzzer seeds (fuzz/corpus/seed-<interpreter>-<workload>) from
live interpreters: each workload of tests/workloads is started under every
interpreter of tests/interpreters.py and build/record_seed dumps what a
snapshot with stacks reads of it (format: fuzz/image.h).
Usage: make_seeds.py RECORD_SEED OUTDIR [LABEL...] (default: every
interpreter; e.g. unstable-3.15 for that one only)"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from interpreters import interpreters  # noqa: E402

WORKLOADS = [("known_threads", "known_threads.py", []),
             ("lock3", "contention.py", ["lock3"])]


def main():
    record, outdir, only = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    found, _ = interpreters()
    for label, python in found:
        if only and label not in only:
            continue
        for name, script, args in WORKLOADS:
            p = subprocess.Popen([python, os.path.join(ROOT, "tests", "workloads", script)] + args,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                for line in p.stdout:
                    try:
                        if json.loads(line).get("ready"):
                            break
                    except ValueError:
                        pass
                time.sleep(0.3)
                out = os.path.join(outdir, "seed-%s-%s" % (label, name))
                r = subprocess.run([record, str(p.pid), out], capture_output=True, text=True)
                print(label, name, r.stdout.strip() or r.stderr.strip())
            finally:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
