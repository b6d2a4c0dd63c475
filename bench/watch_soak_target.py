"""The soak benchmark's target: 50 threads that work a little and wait
(0.5 ms of CPU every 100 ms each: the GIL a quarter busy, so that the
churn thread gets it often enough to start its threads), 100 short-lived threads started every
second, and every --spike-every seconds a planned spike: six CPU-bound
threads for --spike-s seconds (GIL waits far past 50 ms). Each spike is
printed as a JSON line when it starts. Sized by time, not counts."""
import argparse
import json
import os
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("--spike-every", type=float, default=60.0)
p.add_argument("--spike-s", type=float, default=2.0)
a = p.parse_args()


def work_a_little():
    while True:
        end = time.perf_counter() + 0.0005
        while time.perf_counter() < end:
            pass
        time.sleep(0.1)


def short_lived():
    sum(range(100))


started = 0


def churn():
    global started
    while True:
        t0 = time.perf_counter()
        for _ in range(100):
            threading.Thread(target=short_lived).start()
            started += 1
        time.sleep(max(0.0, 1.0 - (time.perf_counter() - t0)))


def burn(until):
    x = 0
    while time.perf_counter() < until:
        x = (x * 31 + 7) % 1000003


for i in range(50):
    threading.Thread(target=work_a_little, daemon=True, name=f"worker-{i}").start()
threading.Thread(target=churn, daemon=True, name="churn").start()
print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
start = time.perf_counter()
n = 0
while True:
    n += 1
    time.sleep(max(0.0, start + n * a.spike_every - time.perf_counter()))
    print(json.dumps({"spike": n, "t": round(time.perf_counter() - start, 1),
                      "threads_started": started}), flush=True)
    until = time.perf_counter() + a.spike_s
    spikers = [threading.Thread(target=burn, args=(until,)) for _ in range(6)]
    for s in spikers:
        s.start()
    for s in spikers:
        s.join()
