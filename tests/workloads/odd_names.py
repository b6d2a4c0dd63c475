"""A thread whose name, file name and function name hold characters a
reader must not pass on raw. Two sets:
- separators: the characters the folded stack format uses (';', line breaks);
- terminal: control sequences (ESC [ 2 J clears the screen; CR and BS
  rewrite a line), with which a target could forge its report or drive the
  reader's terminal.

Usage: odd_names.py [separators|terminal]
Prints one JSON line with the thread's TID once it sleeps in its oddly
named function.
"""
import ctypes
import json
import os
import sys
import threading
import time

ESC = "\x1b[2J\x1b]0;pwned\x07\r\b"
NAMES = {  # function, file, thread (kernel name, at most 15 bytes)
    "separators": ("nap;odd", "odd;dir\nname/odd;file.py", b"odd;thread"),
    "terminal": ("nap" + ESC + "end", "esc" + ESC + "file.py", b"t\x1b[2J\r"),
}
SOURCE = """
def nap(register):
    register()
    while True:
        time.sleep(0.005)
"""


def main():
    function, filename, thread_name = NAMES[sys.argv[1] if len(sys.argv) > 1 else "separators"]
    code = compile(SOURCE, filename, "exec")
    namespace = {"time": time}
    exec(code, namespace)
    nap = namespace["nap"]
    renamed = {"co_name": function}
    if hasattr(nap.__code__, "co_qualname"):
        renamed["co_qualname"] = function
    nap.__code__ = nap.__code__.replace(**renamed)
    tids = {}

    def register():
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(thread_name), 0, 0, 0)  # PR_SET_NAME
        tids["odd"] = threading.get_native_id()

    # Its Python name is as odd as its OS name (and the same, so that is
    # the name shown).
    threading.Thread(target=nap, args=(register,), daemon=True,
                     name=thread_name.decode()).start()
    while not tids:
        time.sleep(0.01)
    time.sleep(0.3)
    print(json.dumps({"ready": True, "pid": os.getpid(), "tids": tids}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
