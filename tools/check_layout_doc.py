#!/usr/bin/env python3
"""docs/layout.md lists every source file: fails (exit 1) naming each file
of src/, include/, bpf/, tools/, bench/, fuzz/ and tests/setup/ that it does
not mention (a header counts as mentioned with its .c file)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("src", "include", "bpf", "tools", "bench", "fuzz", "tests/setup")


def main():
    doc = open(os.path.join(ROOT, "docs", "layout.md"), encoding="utf-8").read()
    missing = []
    for folder in FOLDERS:
        for name in sorted(os.listdir(os.path.join(ROOT, folder))):
            path = os.path.join(ROOT, folder, name)
            if name.startswith((".", "__")) or os.path.isdir(path) and name != "corpus":
                continue
            stem, ext = os.path.splitext(name)
            named = "`%s`" % name in doc or "%s/%s" % (folder, name) in doc or (
                ext == ".h" and "`%s.c`" % stem in doc) or (
                name == "corpus" and "`corpus/`" in doc)
            if not named:
                missing.append("%s/%s" % (folder, name))
    for m in missing:
        print("docs/layout.md does not list %s: add one line for it" % m)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
