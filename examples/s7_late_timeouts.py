"""S7: requests time out although the query is fast: a report thread sorts
a large list, one C call that holds the GIL for ~0.4 s, so the event loop
cannot run and timers fire late. Expected finding: S7, the loop waiting
for the GIL held by the report thread."""
import asyncio
import random
import threading
import time

from _common import args, name_thread, ready, run_for


def list_that_sorts_in(seconds):
    """Random floats that one sorted() call takes `seconds` of CPU to sort
    on this interpreter and machine: timed on a smaller list, then scaled
    (sorting is n log n, near linear at these sizes). CPU time, not wall
    time, so a busy machine makes the hold longer, never shorter."""
    n = 100000
    while True:
        data = [random.random() for _ in range(n)]
        t0 = time.thread_time()
        sorted(data)
        took = time.thread_time() - t0
        if took >= seconds * 0.9:
            return data
        n = int(n * min(8.0, seconds / max(took, 1e-4)) * 1.05)


def build_report(data):
    name_thread("report")
    while True:
        sorted(data)  # one long C call: the GIL is not released meanwhile
        time.sleep(0.3)


async def query():
    await asyncio.sleep(0.01)


async def handle_requests():
    while True:
        try:  # one request after another: a timeout always pending
            await asyncio.wait_for(query(), timeout=0.2)
        except asyncio.TimeoutError:
            pass  # the query took 10 ms; the loop was late


async def main():
    for _ in range(5):  # five clients' requests in flight at any time
        asyncio.ensure_future(handle_requests())
    await asyncio.sleep(0.5)
    ready()
    await asyncio.Event().wait()


if __name__ == "__main__":
    a = args()
    data = list_that_sorts_in(0.4)
    threading.Thread(target=build_report, args=(data,), daemon=True).start()
    threading.Thread(target=run_for, args=(a.seconds,), daemon=True).start()
    asyncio.run(main())
