"""examples/fleet/: what a fleet deploys, checked by the tools that will
read it: promtool for the Prometheus configuration and the alerting rules
(and `promtool test rules` for when they fire), systemd-analyze for the
unit, and the DaemonSet's structure for what gilprobe needs on a node. The
dashboard's and the rules' metric names are checked against a live
/metrics in test_serve.py."""
import os
import re
import subprocess

import yaml
from conftest import GILPROBE, ROOT

FLEET = os.path.join(ROOT, "examples", "fleet")


def promtool(*args):
    r = subprocess.run(["promtool"] + list(args), capture_output=True, text=True, cwd=FLEET,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_prometheus_config_and_rules_are_valid():
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    out = promtool("check", "rules", "rules.yml")
    assert "SUCCESS: 4 rules found" in out, out


def test_alerts_fire_on_the_series_that_should_fire_them():
    """GIL waits p99 near 100 ms, a loop stalling 300 ms a second and a
    critical finding fire their alerts; a process whose waits are all
    under 1 ms does not (rules_test.yml lists exactly the alerts)."""
    assert "SUCCESS" in promtool("test", "rules", "rules_test.yml")


def test_systemd_unit_verifies(tmp_path):
    with open(os.path.join(FLEET, "gilprobe.service")) as f:
        unit = f.read()
    assert "ExecStart=/usr/bin/gilprobe serve --all" in unit
    local = tmp_path / "gilprobe.service"
    local.write_text(unit.replace("/usr/bin/gilprobe", GILPROBE))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(local)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
    assert {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE"} <= set(caps)


def test_daemonset_has_what_gilprobe_needs_on_a_node():
    with open(os.path.join(FLEET, "daemonset.yaml")) as f:
        docs = {d["kind"]: d for d in yaml.safe_load_all(f)}
    pod = docs["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    c = pod["containers"][0]
    assert c["args"][:2] == ["serve", "--all"]
    port = c["ports"][0]["containerPort"]
    assert "0.0.0.0:%d" % port in c["args"]
    caps = set(c["securityContext"]["capabilities"]["add"])
    assert {"BPF", "PERFMON", "SYS_PTRACE"} <= caps
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    btf = [v for v in pod["volumes"] if v["name"] == mounts["/sys/kernel/btf"]][0]
    assert btf["hostPath"]["path"] == "/sys/kernel/btf"
    svc = docs["Service"]
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["ports"][0]["port"] == port
    assert svc["spec"]["selector"] == docs["DaemonSet"]["spec"]["selector"]["matchLabels"]
    # Prometheus finds the pods through that Service
    with open(os.path.join(FLEET, "prometheus.yml")) as f:
        prom = yaml.safe_load(f)
    k8s = [j for j in prom["scrape_configs"] if j["job_name"] == "gilprobe-k8s"][0]
    sd = k8s["dns_sd_configs"][0]
    assert sd["names"] == ["%s.%s.svc.cluster.local" % (svc["metadata"]["name"],
                                                       svc["metadata"]["namespace"])]
    assert sd["port"] == port
