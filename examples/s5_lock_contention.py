"""S5: eight threads share one threading.Lock around a slow "database
write". Expected finding: S5, culprit the `with db_lock:` line in
save_order."""
import threading
import time

from _common import args, name_thread, ready, run_for

db_lock = threading.Lock()


def write_row():
    time.sleep(0.02)  # the slow write, done while holding the lock


def save_order(i):
    name_thread("saver-%d" % i)
    while True:
        with db_lock:
            write_row()
        time.sleep(0.001)


if __name__ == "__main__":
    a = args()
    for i in range(8):
        threading.Thread(target=save_order, args=(i,), daemon=True).start()
    time.sleep(0.3)
    ready()
    run_for(a.seconds)
