#!/usr/bin/env python3
"""Generate src/python/layouts_generated.c: one layout table per CPython minor
version, by compiling tools/layout_probe.c against each version's installed
headers and running it.  One command regenerates all: `make layouts`.

Usage: gen_layouts.py [--check] [PREFIX[=3.X][:t] ...]
  PREFIX: an install prefix holding include/python3.X (default: every
  pyenv version 3.8+ under $(pyenv root)/versions, CPython 3.14 and 3.15
  from the Debian unstable chroot that tests/setup/unstable_chroot.sh
  makes, the free-threaded 3.13t that tests/setup/freethreaded.sh builds,
  and 3.14t from the chroot's 3.14 headers, see below).
  =3.X: which include/python3.X of a prefix that holds several.
  :t: that prefix's (default build) headers compiled as a free-threaded
  build (-DPy_GIL_DISABLED=1).
  --check: do not write; exit 1 if the committed file differs.

3.14t: Debian ships no free-threaded 3.14 and its python3.14 source is not
served by the mirror this project reaches, so its table comes from the
chroot's 3.14 headers (the same release) with Py_GIL_DISABLED defined: a
free-threaded install's pyconfig.h differs from a default one only in that
macro (and HAVE_*/Py_ENABLE_SHARED lines no layout depends on), and every
struct gilprobe reads depends on nothing else (3.14 keeps the JIT's
_Py_TIER2/_Py_JIT fields out of them). Checked on 3.13: pyenv's 3.13.0
headers compiled that way give the 3.13t build's table field for field,
except the version and sizeof(_PyRuntimeState), which change between patch
releases.
"""
import os, re, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "src", "python", "layouts_generated.c")
HEADER = os.path.join(ROOT, "include", "python", "pylayout.h")


def macro_names(macro):
    text = open(HEADER).read()
    m = re.search(r"#define %s\(X\)(.*?)\n\n" % macro, text, re.S)
    return re.findall(r"X\((\w+)\)", m.group(1))


CACHE = os.environ.get("GILPROBE_CACHE", "/var/cache/gilprobe")
CHROOT_PREFIX = os.path.join(CACHE, "unstable-chroot", "usr")
FT_PREFIX = os.path.join(CACHE, "python3.13t")


def default_prefixes():
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() \
        or os.path.expanduser("~/.pyenv")
    vdir = os.path.join(root, "versions")
    out = []
    for name in sorted(os.listdir(vdir)):
        m = re.fullmatch(r"3\.(\d+)\.(\d+)", name)
        if m and int(m.group(1)) >= 8:
            out.append(os.path.join(vdir, name))
    for minor in ("3.14", "3.15"):
        if not os.path.isdir(os.path.join(CHROOT_PREFIX, "include", "python" + minor)):
            sys.exit("gen_layouts: no CPython %s headers in %s; run tests/setup/unstable_chroot.sh"
                     % (minor, CHROOT_PREFIX))
        out.append(CHROOT_PREFIX + "=" + minor)
    if not os.path.isdir(os.path.join(FT_PREFIX, "include", "python3.13t")):
        sys.exit("gen_layouts: no free-threaded CPython 3.13t headers in %s; run "
                 "tests/setup/freethreaded.sh" % FT_PREFIX)
    out.append(FT_PREFIX)
    out.append(CHROOT_PREFIX + "=3.14:t")  # 3.14t, see the docstring
    return out


def build_defines(prefix, include_dir):
    """The interpreter's own -D_Py.../-DPy_... compile flags, which its
    pyconfig.h does not carry: Debian builds 3.14 and 3.15 with the JIT
    (-D_Py_TIER2=3 -D_Py_JIT), which adds fields to PyInterpreterState
    (3.15's _PyRuntime is 8 bytes larger with them). Read from the
    install's _sysconfigdata (CONFIGURE_CFLAGS_NODIST)."""
    libdir = os.path.join(prefix, "lib", include_dir)
    if not os.path.isdir(libdir):
        return []
    flags = []
    for name in sorted(os.listdir(libdir)):
        if name.startswith("_sysconfigdata_") and name.endswith(".py"):
            text = open(os.path.join(libdir, name)).read()
            m = re.search(r"'CONFIGURE_CFLAGS_NODIST': '([^']*)'", text)
            if m:
                flags = re.findall(r"-D_?Py\w*(?:=\w+)?", m.group(1))
            break
    return flags


def probe(arg):
    prefix, free_threaded = (arg[:-2], True) if arg.endswith(":t") else (arg, False)
    prefix, _, minor = prefix.partition("=")
    want = "python" + minor if minor else "python3"
    incs = [d for d in os.listdir(os.path.join(prefix, "include")) if d.startswith(want)]
    if len(incs) != 1:
        sys.exit("gen_layouts: expected one include/python3.X in %s, found %s" % (prefix, incs))
    inc = os.path.join(prefix, "include", incs[0])
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "probe")
        # -idirafter: Debian's multiarch pyconfig.h (<x86_64-linux-gnu/python3.X/
        # pyconfig.h>) from the prefix, everything else from this system.
        # :t compiles a default install's headers as a free-threaded source
        # build would have them: without the install's JIT flags.
        defines = ["-DPy_GIL_DISABLED=1"] if free_threaded else build_defines(prefix, incs[0])
        subprocess.run(["gcc", "-w"] + defines + ["-I", inc, "-idirafter",
                        os.path.join(prefix, "include"), os.path.join(HERE, "layout_probe.c"),
                        "-o", exe], check=True)
        lines = subprocess.run([exe], check=True, capture_output=True, text=True).stdout.split("\n")
    values = {}
    for line in lines:
        if line.strip():
            k, v = line.split()
            values[k] = int(v)
    hexv = values["version_hex"]
    version = "%d.%d.%d" % (hexv >> 24, (hexv >> 16) & 0xFF, (hexv >> 8) & 0xFF)
    return version, values


def render(tables):
    fields = macro_names("PY_LAYOUT_FIELDS")
    dbg = ["dbg_" + n for n in macro_names("PY_DEBUG_FIELDS") + macro_names("PY_DEBUG_EXTRA")]
    dbg.append("dbg_size")
    out = ["/* GENERATED by tools/gen_layouts.py from each version's headers. DO NOT EDIT. */",
           '#include "python/pylayout.h"', "", "const struct py_layout py_generated_layouts[] = {"]
    for version, values in tables:
        extra = set(values) - set(fields) - set(dbg)
        if extra:
            sys.exit("gen_layouts: probe printed unknown fields %s" % sorted(extra))
        missing = set(fields) - set(values)
        if missing:
            sys.exit("gen_layouts: probe did not print %s" % sorted(missing))
        out.append("    { .header_version = \"%s%s\"," % (version, "t" if values["free_threaded"] else ""))
        for name in fields + dbg:
            out.append("      .%s = %d," % (name, values.get(name, 0 if name == "dbg_size" else -1)))
        out.append("    },")
    out += ["};", "const size_t py_generated_layout_count =",
            "    sizeof py_generated_layouts / sizeof py_generated_layouts[0];", ""]
    return "\n".join(out)


def main():
    args = sys.argv[1:]
    check = "--check" in args
    prefixes = [a for a in args if a != "--check"] or default_prefixes()
    tables = sorted((probe(p) for p in prefixes),
                    key=lambda t: (t[1]["version_hex"], t[1]["free_threaded"]))
    text = render(tables)
    if check:
        current = open(OUT).read() if os.path.exists(OUT) else ""
        if current != text:
            print("gen_layouts: src/python/layouts_generated.c is out of date; run `make layouts`")
            return 1
        print("gen_layouts: layouts up to date (%s)" % ", ".join(
            v + ("t" if t["free_threaded"] else "") for v, t in tables))
        return 0
    open(OUT, "w").write(text)
    print("gen_layouts: wrote %s (%s)" % (OUT, ", ".join(
        v + ("t" if t["free_threaded"] else "") for v, t in tables)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
