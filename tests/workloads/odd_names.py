"""A thread whose name, file name and function name hold the characters the
folded stack format uses as separators (';', line breaks).

Usage: odd_names.py
Prints one JSON line with the thread's TID once it sleeps in `nap`.
"""
import ctypes
import json
import os
import threading
import time

LIBC = ctypes.CDLL(None)
FILENAME = "odd;dir\nname/odd;file.py"
SOURCE = """
def nap(register):
    register()
    while True:
        time.sleep(0.005)
"""


def main():
    code = compile(SOURCE, FILENAME, "exec")
    namespace = {"time": time}
    exec(code, namespace)
    nap = namespace["nap"]
    # The function's name (and qualified name on 3.11+) gets a ';' too.
    renamed = {"co_name": "nap;odd"}
    if hasattr(nap.__code__, "co_qualname"):
        renamed["co_qualname"] = "nap;odd"
    nap.__code__ = nap.__code__.replace(**renamed)
    tids = {}

    def register():
        LIBC.prctl(15, ctypes.c_char_p(b"odd;thread"), 0, 0, 0)  # PR_SET_NAME
        tids["odd"] = threading.get_native_id()

    threading.Thread(target=nap, args=(register,), daemon=True).start()
    while not tids:
        time.sleep(0.01)
    time.sleep(0.3)
    print(json.dumps({"ready": True, "pid": os.getpid(), "tids": tids}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
