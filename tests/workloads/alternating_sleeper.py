"""A thread that sleeps in two places by turns, 40 ms in each (sized by
time), and a main thread that sleeps. Most samples find a thread that has
not run since the sample before (the eBPF reader then does not read its
memory again): the sampler must still see it move from one sleep to the
other, half of the time in each."""
import json
import os
import threading
import time


def sleep_in_a():
    time.sleep(0.04)


def sleep_in_b():
    time.sleep(0.04)


def alternate():
    while True:
        sleep_in_a()
        sleep_in_b()


t = threading.Thread(target=alternate, name="alternator", daemon=True)
t.start()
print(json.dumps({"ready": True, "pid": os.getpid(), "tid": t.native_id}), flush=True)
time.sleep(600)
