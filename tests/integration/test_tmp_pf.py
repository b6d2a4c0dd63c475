import time, json
from test_examples import Example
from conftest import run_gilprobe
def test_x():
    t0=time.time()
    ex = Example("/work/main/tests/setup/python3.15", "s2_prefork_server")
    t1=time.time()
    time.sleep(0.3)
    r = run_gilprobe(["-p", str(ex.pid), "-d", "4", "--subprocesses", "--json", "--fail-on", "scenario=S2"], timeout=60)
    t2=time.time()
    ex.stop()
    d=json.loads(r.stdout)
    print("start %.1f gilprobe %.1f rc %d" % (t1-t0, t2-t1, r.returncode), [(c['samples']['taken'], c['gil']['handoffs_per_s']) for c in d['subprocesses']])
