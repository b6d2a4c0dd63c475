"""Shared by the examples: --seconds, the ready line, naming threads."""
import argparse
import ctypes
import json
import os
import sys
import time

_LIBC = ctypes.CDLL(None)


def args(extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3600, help="run this long, then exit")
    if extra:
        extra(p)
    return p.parse_args()


def ready(**info):
    """One JSON line once the problem is in effect (tests and demos wait for it)."""
    print(json.dumps(dict(ready=True, pid=os.getpid(), **info)), flush=True)


def name_thread(name):
    _LIBC.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME


def run_for(seconds):
    time.sleep(seconds)
    sys.stdout.flush()
    os._exit(0)
