"""Shared by the examples: --seconds, the ready line, naming threads, a
loopback asyncio service with its client, a CPU-bound process pool.

Every duration here is measured with a clock, never sized by a count of
iterations: interpreters and machines differ 2x in speed, and a "300 ms
stall" has to last 300 ms on all of them."""
import argparse
import asyncio
import ctypes
import json
import multiprocessing
import os
import sys
import threading
import time

_LIBC = ctypes.CDLL(None)


def args(extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3600, help="run this long, then exit")
    if extra:
        extra(p)
    return p.parse_args()


def ready(**info):
    """One JSON line once the problem is in effect (tests and demos wait for it)."""
    print(json.dumps(dict(ready=True, pid=os.getpid(), **info)), flush=True)


def name_thread(name):
    _LIBC.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME


def run_for(seconds):
    time.sleep(seconds)
    sys.stdout.flush()
    os._exit(0)


def serve_on_loopback(handler, request, pause_s, settle_s=0.3, seconds=None):
    """Runs an asyncio server with `handler` and a client on loopback that
    sends `request`, reads the answer and pauses `pause_s`, forever; prints
    the ready line after `settle_s` and ends after `seconds` (default:
    --seconds)."""
    if seconds is None:
        seconds = args().seconds

    async def client(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            writer.write(request)
            await writer.drain()
            await reader.read(64)
            await asyncio.sleep(pause_s)

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        asyncio.ensure_future(client(server.sockets[0].getsockname()[1]))
        await asyncio.sleep(settle_s)
        ready()
        await asyncio.Event().wait()

    threading.Thread(target=run_for, args=(seconds,), daemon=True).start()
    asyncio.run(main())


def crunch(_):
    """A pool task that computes forever."""
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003


def run_pool(workers):
    """`workers` processes running crunch; prints the ready line, and after
    --seconds ends the whole process group (pool included)."""
    seconds = args().seconds
    if os.getpgrp() != os.getpid():
        os.setpgrp()  # so the whole tree can be ended at once
    pool = multiprocessing.get_context("fork").Pool(workers)
    pool.map_async(crunch, range(workers))
    time.sleep(0.5)
    ready(workers=workers)
    time.sleep(seconds)
    os.killpg(0, 9)
