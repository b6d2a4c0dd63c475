"""A target that changes while it is read: every dump still succeeds with a
well-formed result (marked partial where the walk was cut), never a crash,
a hang or a sanitizer report."""
import json

import pytest
from conftest import gp_json, GILPROBE_ASAN, Workload, interpreter_params, run_gilprobe


@pytest.fixture(scope="module", params=interpreter_params())
def churn(request):
    w = Workload(request.param, "churn.py")
    yield w
    w.stop()


def check_dump(doc):
    assert isinstance(doc["partial"], bool)
    # main, the spawner and the breathing stack live throughout; a walk the
    # churn cut short may miss one, and then must say it is partial.
    assert doc["python_threads"] >= 3 or doc["partial"], doc
    for t in doc["threads"]:
        assert isinstance(t["frames_complete"], bool)
        for f in t["frames"]:
            assert f["function"] and f["file"]
            assert f["line"] is None or f["line"] > 0


@pytest.mark.parametrize("binary", [None, GILPROBE_ASAN], ids=["release", "asan"])
def test_dumps_of_a_churning_process_never_fail(churn, binary):
    deep = 0
    for _ in range(30):
        r = run_gilprobe(["dump", "-p", str(churn.pid), "--json"], binary=binary, timeout=20)
        assert r.returncode == 0, r.stderr
        assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
        doc = gp_json(r.stdout)
        check_dump(doc)
        deep = max([deep] + [len(t["frames"]) for t in doc["threads"]])
    assert deep > 20, "the recursing threads were seen with their deep stacks"
