"""S8: a thread per connection, 200 of them mostly idle, while a cache grows
without bound. Expected finding: S8 (warning: memory grows)."""
import threading
import time

from _common import args, ready, run_for

cache = []


def connection(stop):
    stop.wait()  # an idle connection: a thread (and its stack) each


if __name__ == "__main__":
    a = args()
    stop = threading.Event()
    for _ in range(200):
        threading.Thread(target=connection, args=(stop,), daemon=True).start()
    threading.Thread(target=run_for, args=(a.seconds,), daemon=True).start()
    time.sleep(0.3)
    ready()
    while True:
        cache.append(bytearray(b"x" * (512 * 1024)))  # ~5 MiB/s, never evicted
        time.sleep(0.1)
