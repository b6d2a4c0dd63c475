"""Run by each interpreter: prints its own line tables and the lines the
interpreter itself maps every instruction offset to.

Output lines:
  V <version> <format>          format 0 co_lnotab, 1 3.10 table, 2 locations
  C <firstlineno> <table hex>   one code object
  E <offset> <line> ...         expected pairs (offset in the decoder's unit)
"""
import dis
import sys
import types

MODULES = ["threading", "json.decoder", "asyncio.base_events", "inspect", "dis", "argparse",
           "collections", "email.message", "unittest.case", "http.client"]

SAMPLE = '''
def far_jumps(x):
    a = 1
''' + "\n" * 300 + '''
    b = 2
    if x:
''' + "\n" * 140 + '''
        return a
    return b

def loops(n):
    t = 0
    for i in range(n):
        while t < i:
            t += 1
    return t

def backwards(x):
    for i in range(3):
        x += i
    else:
        x -= 1
    return [y
            for y in range(x)
            if y]

class K:
    def m(self, a,
          b):
        try:
            return a / b
        except ZeroDivisionError:
            return None
        finally:
            pass
'''


def codes(obj):
    yield obj
    for c in obj.co_consts:
        if isinstance(c, types.CodeType):
            yield from codes(c)


def expected(co, fmt):
    if fmt == 0:
        starts = list(dis.findlinestarts(co))
        out = []
        for off in range(0, len(co.co_code), 2):
            line = co.co_firstlineno
            for s, l in starts:
                if s <= off:
                    line = l
            out.append((off, line))
        return out
    if fmt == 1:
        out = []
        for start, end, line in co.co_lines():
            for off in range(start, end, 2):
                out.append((off, -1 if line is None else line))
        return out
    return [(i, -1 if pos[0] is None else pos[0]) for i, pos in enumerate(co.co_positions())]


def main():
    v = sys.version_info
    fmt = 0 if v < (3, 10) else 1 if v < (3, 11) else 2
    print("V %d.%d.%d %d" % (v[0], v[1], v[2], fmt))
    sources = [("<sample>", SAMPLE)]
    for name in MODULES:
        mod = __import__(name, fromlist=["_"])
        with open(mod.__file__) as f:
            sources.append((mod.__file__, f.read()))
    for fname, src in sources:
        for co in codes(compile(src, fname, "exec")):
            table = co.co_lnotab if fmt == 0 else co.co_linetable
            print("C %d %s" % (co.co_firstlineno, table.hex() or "-"))
            print("E " + " ".join("%d %d" % p for p in expected(co, fmt)))


if __name__ == "__main__":
    main()
