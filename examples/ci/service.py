"""The program under test in the CI examples: a small asyncio service that
hashes requests in a thread pool (hashlib releases the GIL on large
buffers) and answers pings from its event loop. Healthy by design: the
loop never stalls, threads barely wait for the GIL.

With --bad it hashes in pure Python on the event loop instead (S1: the
loop stalls) — the contention check catches that.
Usage: service.py [--bad] [--seconds S]"""
import argparse
import asyncio
import concurrent.futures
import hashlib
import time


def hash_native(data):
    return hashlib.sha256(data * 64).hexdigest()  # releases the GIL


def hash_python(data, ms=150):
    """Hashes `data` over and over for `ms` of wall time (a heavy request's
    worth of pure-Python work, whatever the interpreter's speed)."""
    end = time.perf_counter() + ms / 1000.0
    h = 0
    while time.perf_counter() < end:
        for b in data:  # pure Python: holds the GIL, blocks the loop
            h = (h * 31 + b) & 0xFFFFFFFF
    return h


async def main(bad, seconds):
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(4)
    payload = bytes(range(256)) * 1024
    end = loop.time() + seconds
    served = 0
    while loop.time() < end:
        if bad:
            hash_python(payload[:4096])
        else:
            await loop.run_in_executor(pool, hash_native, payload)
        await asyncio.sleep(0.01)  # a ping answered between requests
        served += 1
    pool.shutdown()
    print("served %d requests" % served)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--bad", action="store_true")
    p.add_argument("--seconds", type=float, default=3)
    a = p.parse_args()
    asyncio.run(main(a.bad, a.seconds))
