"""Overwrites one value of its own _Py_DebugOffsets block (argv[1]: the
position inside it), then sleeps: a live process whose block is corrupted,
for test_versions.py. CPython itself never reads the block; out-of-process
tools do."""
import ctypes
import json
import struct
import sys
import time

base = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
assert ctypes.string_at(base, 8) == b"xdebugpy"
ctypes.memmove(base + int(sys.argv[1]), struct.pack("<Q", 1 << 40), 8)
print(json.dumps({"ready": True}), flush=True)
time.sleep(60)
