#!/usr/bin/env python3
"""docs/layout.md lists every source file: fails (exit 1) naming each file
of src/, include/, bpf/, tools/, bench/, fuzz/ and tests/setup/ that it does
not mention, and each layer folder of src/ without its line in the folder
table. In src/ and include/ a file is named by its path under the folder
(`util/grow.c`); a header counts as mentioned with its .c file."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("bpf", "tools", "bench", "fuzz", "tests/setup")
LAYERED = ("src", "include")


def flat_missing(doc):
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
    return missing


def layered_missing(doc):
    missing = []
    for top in LAYERED:
        for layer in sorted(os.listdir(os.path.join(ROOT, top))):
            folder = os.path.join(ROOT, top, layer)
            if not os.path.isdir(folder):
                missing.append("%s/%s" % (top, layer))
                continue
            if top == "src" and "| `src/%s/` |" % layer not in doc:
                missing.append("src/%s/ (the folder table)" % layer)
            for name in sorted(os.listdir(folder)):
                stem, ext = os.path.splitext(name)
                rel = "%s/%s" % (layer, name)
                named = "`%s`" % rel in doc or "`%s/%s`" % (top, rel) in doc or (
                    ext == ".h" and "`%s/%s.c`" % (layer, stem) in doc)
                if not named:
                    missing.append("%s/%s" % (top, rel))
    return missing


def main():
    doc = open(os.path.join(ROOT, "docs", "layout.md"), encoding="utf-8").read()
    missing = flat_missing(doc) + layered_missing(doc)
    for m in missing:
        print("docs/layout.md does not list %s: add one line for it" % m)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
