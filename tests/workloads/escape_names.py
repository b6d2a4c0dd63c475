"""A thread whose function name, file name and kernel thread name hold
terminal control sequences (ESC [ 2 J clears the screen; CR and BS
rewrite a line). A reader that prints them raw lets the target forge its
report or drive the terminal.

Usage: escape_names.py
Prints one JSON line once the thread sleeps in its oddly named function."""
import ctypes
import json
import os
import threading
import time

ESC = "\x1b[2J\x1b]0;pwned\x07\r\b"
SOURCE = """
def nap(register):
    register()
    while True:
        time.sleep(0.005)
"""


def main():
    code = compile(SOURCE, "esc" + ESC + "file.py", "exec")
    namespace = {"time": time}
    exec(code, namespace)
    nap = namespace["nap"]
    renamed = {"co_name": "nap" + ESC + "end"}
    if hasattr(nap.__code__, "co_qualname"):
        renamed["co_qualname"] = "nap" + ESC + "end"
    nap.__code__ = nap.__code__.replace(**renamed)
    ready = threading.Event()

    def register():
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(b"t\x1b[2J\r"), 0, 0, 0)  # PR_SET_NAME
        ready.set()

    threading.Thread(target=nap, args=(register,), daemon=True).start()
    ready.wait()
    time.sleep(0.2)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
