#!/usr/bin/env python3
"""Lists C functions longer than a limit (default 120 lines), generated
files aside: a function's body runs from a '{' alone at the start of a line
to the next '}' alone at the start of a line (the project's style).
Usage: long_functions.py [LIMIT] FILE...; exit 1 when any is found."""
import re
import sys

GENERATED = ("layouts_generated.c",)


def long_functions(path, limit):
    lines = open(path, encoding="utf-8").read().split("\n")
    found, start, name = [], None, None
    for i, line in enumerate(lines):
        if line == "{" and i > 0:
            start = i
            m = re.search(r"(\w+)\s*\(", lines[i - 1]) or re.search(r"(\w+)\s*\(", lines[i - 2])
            name = m.group(1) if m else "?"
        elif line == "}" and start is not None:
            n = i - start + 1
            if n > limit:
                found.append((path, name, n))
            start = None
    return found


def main():
    args = sys.argv[1:]
    limit = int(args.pop(0)) if args and args[0].isdigit() else 120
    found = [f for p in args if not p.endswith(GENERATED) for f in long_functions(p, limit)]
    for path, name, n in found:
        print("%s: %s is %d lines (limit %d)" % (path, name, n, limit))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
