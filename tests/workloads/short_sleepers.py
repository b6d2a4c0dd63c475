"""Threads that live 50 ms, asleep all that time, then exit: three start
every 70 ms. Nothing of them runs but their start and end; a sample of a
thread after its exit would count as something else (their first report
counted twice their lifetime, three quarters of it as running).
Prints {"ready": true, "pid": ...}."""
import json
import os
import threading
import time

LIFE_S = 0.05


def sleeper():
    time.sleep(LIFE_S)


def main():
    print(json.dumps({"ready": True, "pid": os.getpid(), "life_s": LIFE_S}), flush=True)
    while True:
        for _ in range(3):
            threading.Thread(target=sleeper).start()
        time.sleep(0.07)


if __name__ == "__main__":
    main()
