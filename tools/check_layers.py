#!/usr/bin/env python3
"""Fails when a source file includes a header of a layer above its own.

The layers, lowest first, are the folders of src/ (and of include/, which
mirrors them for headers that cross a folder):

  util < target < python < record < ebpf, native < sample < analysis < report < cli

A file may include headers of its own layer and of the layers below it.
ebpf and native share a rank but are separate: neither includes the other.
A header private to a folder (src/LAYER/x.h) belongs to that folder's layer.
Every folder under src/ and include/ must be one of the layers, so a new
folder cannot slip past the check.

Usage: check_layers.py [ROOT]   (exit 1 and one line per violation)
"""
import os
import re
import sys

RANK = {
    "util": 0,
    "target": 1,
    "python": 2,
    "record": 3,
    "ebpf": 4,
    "native": 4,
    "sample": 5,
    "analysis": 6,
    "report": 7,
    "cli": 8,
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of_include(name, own_layer, own_dir, root):
    """The layer of a quoted include seen from a file in own_dir, or None
    for a header that is not ours (generated skeletons, build/)."""
    if os.path.exists(os.path.join(own_dir, name)):
        return own_layer if "/" not in name else None
    first = name.split("/")[0]
    if "/" in name and os.path.exists(os.path.join(root, "include", name)):
        return first
    return None


def check(root):
    errors = []
    for top in ("src", "include"):
        base = os.path.join(root, top)
        for entry in sorted(os.listdir(base)):
            path = os.path.join(base, entry)
            if not os.path.isdir(path):
                errors.append("%s/%s: outside any layer folder (%s)" % (top, entry, ", ".join(RANK)))
                continue
            if entry not in RANK:
                errors.append("%s/%s/: not a layer (%s)" % (top, entry, ", ".join(RANK)))
                continue
            for fname in sorted(os.listdir(path)):
                if not fname.endswith((".c", ".h")):
                    continue
                rel = "%s/%s/%s" % (top, entry, fname)
                text = open(os.path.join(path, fname), encoding="utf-8").read()
                for inc in INCLUDE.findall(text):
                    layer = layer_of_include(inc, entry, path, root)
                    if layer is None:
                        if "/" in inc and not os.path.exists(os.path.join(root, "include", inc)):
                            errors.append("%s: includes \"%s\", which does not exist" % (rel, inc))
                        continue
                    if layer not in RANK:
                        errors.append("%s: includes \"%s\" outside any layer" % (rel, inc))
                    elif layer != entry and RANK[layer] >= RANK[entry]:
                        errors.append("%s (layer %s) includes \"%s\" of layer %s, which is %s" % (
                            rel, entry, inc, layer,
                            "above it" if RANK[layer] > RANK[entry] else "beside it"))
    return errors


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    errors = check(root)
    for e in errors:
        print(e)
    if errors:
        print("check_layers: %d include(s) against the layer order; see docs/layout.md" % len(errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
