"""`gilprobe serve` locked down: TLS (a self-signed certificate made by
openssl), bearer-token and basic authentication from --auth-file, every
query parameter checked, one-shot reports bounded (429), and under a load
of thousands of requests a second (`wrk`, 8 keep-alive connections,
5 s) the collectors keep their sample rate: the HTTP side runs on threads
of its own, the sampling in processes of their own."""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
from conftest import GILPROBE, INTERPRETERS, Workload, run_gilprobe
from test_serve import free_port, wait_http

# The whole module on one worker, in the group of the tests that load the
# machine: one server for all its tests, and its reports and its load test
# never beside another test's timing.
pytestmark = pytest.mark.xdist_group("cpu-heavy")
TOKEN = "s3cret-token-for-tests"
USER = "scraper:pa55word"


@pytest.fixture(scope="module")
def locked():
    workdir = tempfile.mkdtemp(prefix="gp-serve-sec-")
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    auth = os.path.join(workdir, "auth")
    with open(auth, "w") as f:
        f.write("# who may read\nBearer %s\n%s\n" % (TOKEN, USER))
    w = Workload(dict(INTERPRETERS)["pyenv-3.11"], "contention.py", ["lock3"])
    port = free_port()
    proc = subprocess.Popen([GILPROBE, "serve", "--listen", "127.0.0.1:%d" % port, "-r", "10",
                             "-p", str(w.info["pid"]), "--tls-cert", cert, "--tls-key", key,
                             "--auth-file", auth], stderr=subprocess.PIPE, text=True)
    ctx = ssl.create_default_context(cafile=cert)
    wait_http("https://127.0.0.1:%d/healthz" % port, context=ctx)
    try:
        yield {"port": port, "ctx": ctx, "pid": w.info["pid"], "proc": proc, "cert": cert,
               "workdir": workdir}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        w.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def get(s, path, headers=None, method="GET"):
    c = http.client.HTTPSConnection("127.0.0.1", s["port"], context=s["ctx"], timeout=30)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace"), r
    finally:
        c.close()


def bearer(token=TOKEN):
    return {"Authorization": "Bearer " + token}


def test_authentication_is_required_but_healthz_stays_open(locked):
    assert get(locked, "/healthz")[0] == 200
    status, _, r = get(locked, "/metrics")
    assert status == 401 and "Basic" in r.headers["WWW-Authenticate"]
    assert get(locked, "/metrics", bearer("wrong"))[0] == 401
    assert get(locked, "/metrics", bearer(TOKEN + "x"))[0] == 401
    status, body, _ = get(locked, "/metrics", bearer())
    assert status == 200 and 'pid="%d"' % locked["pid"] in body
    basic = {"Authorization": "Basic " + base64.b64encode(USER.encode()).decode()}
    assert get(locked, "/", basic)[0] == 200
    wrong = {"Authorization": "Basic " + base64.b64encode(b"scraper:nope").decode()}
    assert get(locked, "/", wrong)[0] == 401


def test_plain_http_and_unknown_certificates_are_refused(locked):
    c = http.client.HTTPConnection("127.0.0.1", locked["port"], timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        c.request("GET", "/healthz")
        c.getresponse().read()
    c.close()
    untrusted = ssl.create_default_context()  # the system's CAs only
    c = http.client.HTTPSConnection("127.0.0.1", locked["port"], context=untrusted, timeout=10)
    with pytest.raises(ssl.SSLError):
        c.request("GET", "/healthz")
    c.close()


def test_parameters_are_checked(locked):
    pid = locked["pid"]
    assert get(locked, "/api/report?pid=1&seconds=1", bearer())[0] == 404
    for bad in ("pid=%d&seconds=0" % pid, "pid=%d&seconds=61" % pid, "pid=%d&seconds=x" % pid,
                "pid=abc&seconds=1", "seconds=1", "pid=%d&seconds=1e3" % pid):
        status, body, _ = get(locked, "/api/report?" + bad, bearer())
        assert status == 400, (bad, status, body)
    assert get(locked, "/nope", bearer())[0] == 404
    assert get(locked, "/metrics", bearer(), method="POST")[0] == 405
    assert get(locked, "/metrics", bearer(), method="DELETE")[0] == 405


def test_one_shot_reports_are_bounded(locked):
    """Two at a time: of three asked together, one gets 429; the others
    are the `-p --json` report of that process."""
    results = []

    def ask():
        results.append(get(locked, "/api/report?pid=%d&seconds=3" % locked["pid"], bearer()))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.2)
    for t in threads:
        t.join()
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 200, 429], [(r[0], r[1][:200]) for r in results]
    doc = json.loads(next(r[1] for r in results if r[0] == 200))
    assert doc["pid"] == locked["pid"] and doc["run"]["duration_s"] >= 2.5
    assert any(l["waiters"] == 3 for l in doc["locks"]), doc["locks"]


def samples_total(locked):
    body = get(locked, "/metrics", bearer())[1]
    m = re.search(r'^gilprobe_samples_total\{[^}]*\} (\d+)$', body, re.M)
    return int(m.group(1))


def test_load_does_not_slow_sampling(locked):
    """`wrk`, 8 keep-alive connections over TLS for 5 s (HTTP/1.1, as
    Prometheus scrapes): well over 1000 requests a second, none failed, and
    the collector's samples go on at its 10 a second (at least 90% of
    them)."""
    before, t0 = samples_total(locked), time.monotonic()
    wrk = subprocess.run(["wrk", "-t", "2", "-c", "8", "-d", "5", "-H",
                          "Authorization: Bearer " + TOKEN,
                          "https://127.0.0.1:%d/metrics" % locked["port"]],
                         capture_output=True, text=True, timeout=60)
    after, t1 = samples_total(locked), time.monotonic()
    assert wrk.returncode == 0, wrk.stderr
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk.stdout).group(1))
    assert rate >= 1000, wrk.stdout
    assert "Non-2xx" not in wrk.stdout and "Socket errors" not in wrk.stdout, wrk.stdout
    # the collector sends its totals once a second: a second's edge either side
    assert after - before >= 0.9 * 10 * (t1 - t0 - 2), (after - before, t1 - t0, rate)


def test_slow_and_garbage_clients_stall_nothing(locked):
    """50 clients that send half a request and wait, and clients that send
    garbage: the server answers the others meanwhile and the sampling goes
    on (libmicrohttpd cuts the slow ones after a 10 s idle timeout)."""
    slow = []
    for _ in range(50):
        raw = socket.create_connection(("127.0.0.1", locked["port"]), timeout=30)
        tls = locked["ctx"].wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the end
        slow.append(tls)
    for junk in (b"\x00\xff" * 500, b"GET " + b"A" * 100000 + b" HTTP/1.1\r\n\r\n",
                 b"BREW /pot HTCPCP/1.0\r\n\r\n"):
        raw = socket.create_connection(("127.0.0.1", locked["port"]), timeout=30)
        try:
            tls = locked["ctx"].wrap_socket(raw, server_hostname="127.0.0.1")
            tls.sendall(junk)
            tls.recv(4096)  # an error status or the connection closed
        except (ssl.SSLError, OSError):
            pass
        finally:
            raw.close()
    before, t0 = samples_total(locked), time.monotonic()
    for _ in range(5):
        assert get(locked, "/healthz")[0] == 200
        time.sleep(0.5)
    time.sleep(2)
    after, t1 = samples_total(locked), time.monotonic()
    assert after - before >= 0.9 * 10 * (t1 - t0 - 2), (after - before, t1 - t0)
    for tls in slow:
        tls.close()
    assert locked["proc"].poll() is None


def test_bad_options_are_refused_at_start(tmp_path):
    cases = [
        (["serve"], "needs -p PID"),
        (["serve", "-p", "1", "--listen", "nowhere"], "--listen wants ADDR:PORT"),
        (["serve", "--all", "--match", "("], "--match '(' is not a regular expression"),
        (["serve", "-p", "1", "--match", "x"], "--match and --exclude go with --all"),
        (["serve", "-p", "1", "--tls-cert", "x"], "--tls-cert and --tls-key go together"),
        (["serve", "--all", "--auth-file", str(tmp_path / "none")], "cannot read --auth-file"),
    ]
    for args, msg in cases:
        r = run_gilprobe(args, timeout=20)
        assert r.returncode == 2 and msg in r.stderr, (args, r.returncode, r.stderr)
    (tmp_path / "empty").write_text("# nothing\n")
    r = run_gilprobe(["serve", "--all", "--auth-file", str(tmp_path / "empty")], timeout=20)
    assert r.returncode == 2 and "holds no 'Bearer TOKEN'" in r.stderr, r.stderr
    r = run_gilprobe(["serve", "-p", "999999"], timeout=20)
    assert r.returncode == 3, r.stderr
