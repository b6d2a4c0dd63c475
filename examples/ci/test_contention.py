"""A contention check as a pytest test: run the service under gilprobe and
fail the build when its event loop stalls or its threads queue for the GIL.

    GILPROBE=/path/to/gilprobe python3 -m pytest examples/ci/test_contention.py

gilprobe needs root (or CAP_SYS_PTRACE; eBPF figures need CAP_BPF+CAP_PERFMON)."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GILPROBE = os.environ.get("GILPROBE", "gilprobe")
PYTHON = os.environ.get("PYTHON", sys.executable)

CHECKS = [
    "loop.stall_max_ms>100",        # no request may block the loop 100 ms
    "thread.max_gil_wait_pct>30",   # no thread may spend 30% of its time queueing for the GIL
    "finding>=critical",            # nor any critical diagnosis
]


def profile(tmp_path, *service_args):
    report = tmp_path / "gilprobe.json"
    cmd = [GILPROBE, "run", "--json", "-o", str(report), "--junit", str(tmp_path / "gil.xml")]
    for check in CHECKS:
        cmd += ["--fail-on", check]
    cmd += ["--", PYTHON, os.path.join(HERE, "service.py"), "--seconds", "2"] + list(service_args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return r, json.loads(report.read_text())


def test_service_has_no_gil_or_event_loop_contention(tmp_path):
    r, report = profile(tmp_path)
    failed = [c for c in report["checks"] if c["result"] != "passed"]
    assert r.returncode == 0, "contention checks failed: %s\n%s" % (failed, r.stderr)
    assert "served" in r.stdout  # the service's own output is untouched


def test_the_check_catches_cpu_work_on_the_event_loop(tmp_path):
    """The same check on the --bad variant must fail: proof it can."""
    r, report = profile(tmp_path, "--bad")
    assert r.returncode == 9, r.stderr  # gilprobe's "a check failed"
    results = {c["expr"]: c["result"] for c in report["checks"]}
    assert results["loop.stall_max_ms>100"] == "failed"
    assert any(f["scenario"] == "S1" for f in report["findings"])
