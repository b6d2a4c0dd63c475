"""An asyncio event loop serving a loopback TCP echo workload, with known
stalls, for the event-loop tests.

Usage: asyncio_loop.py MODE [--pure] [--threads N]
  cpu      every second, a coroutine runs ~300 ms of pure-Python CPU work
  sleep    every second, a coroutine calls time.sleep(0.3) (blocking)
  chain    every second, three ~60 ms CPU-bound callbacks back to back,
           each scheduled by the one before with call_soon (so the loop
           polls its selector, without waiting, between them)
  timeouts eight tasks in wait_for(sleep(0.01), timeout=0.12) in a loop,
           and a call_later callback that burns 300 ms every second
  leak     a task that never finishes started every 10 ms (100 a second)
  healthy  the echo workload only
  idle     the loop only awaits asyncio.sleep(10)
  --pure     use the pure-Python Task implementation instead of _asyncio's
  --uvloop   run uvloop's event loop (Debian's python3-uvloop)
  --threads  run N independent loops, one per thread (the first one gets
             the injected stalls, the others are healthy)
Prints one JSON line (the loop threads' TIDs) once every loop runs.
"""
import asyncio
import ctypes
import json
import os
import sys
import threading
import time

LIBC = ctypes.CDLL(None)
tids = {}
STALL_S = 0.3
PERIOD_S = 1.0


def register(name):
    LIBC.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME
    tids[name] = threading.get_native_id()


def burn_cpu():
    end = time.perf_counter() + STALL_S
    while time.perf_counter() < end: pass  # MARK:cpu_stall  # noqa: E701


def report(start):
    """Each injected stall as the workload itself measured it."""
    print(json.dumps({"injected_ms": (time.perf_counter() - start) * 1000}), flush=True)


async def cpu_injector():
    while True:
        await asyncio.sleep(PERIOD_S - STALL_S)
        start = time.perf_counter()
        burn_cpu()
        report(start)


CHAIN_LINKS = 3
CHAIN_LINK_S = 0.06


def chain_link(loop, left, start):
    end = time.perf_counter() + CHAIN_LINK_S
    while time.perf_counter() < end: pass  # MARK:chain_link  # noqa: E701
    if left > 1:
        loop.call_soon(chain_link, loop, left - 1, start)
    else:
        report(start)


async def chain_injector():
    loop = asyncio.get_running_loop() if hasattr(asyncio, "get_running_loop") else \
        asyncio.get_event_loop()
    while True:
        await asyncio.sleep(PERIOD_S - CHAIN_LINKS * CHAIN_LINK_S)
        loop.call_soon(chain_link, loop, CHAIN_LINKS, time.perf_counter())


async def sleep_injector():
    while True:
        await asyncio.sleep(PERIOD_S - STALL_S)
        start = time.perf_counter()
        time.sleep(STALL_S)  # MARK:sleep_stall
        report(start)


WAITERS = 8
WAIT_TIMEOUT_S = 0.12


def stalling_callback(loop):
    """A periodic call_later callback (not a task) that burns the CPU."""
    start = time.perf_counter()
    end = start + STALL_S
    while time.perf_counter() < end: pass  # MARK:callback_stall  # noqa: E701
    report(start)
    loop.call_later(PERIOD_S - STALL_S, stalling_callback, loop)


async def timed_query(stats):
    """A 10 ms query under a 120 ms timeout: it times out only when the loop
    is late."""
    while True:
        try:
            await asyncio.wait_for(asyncio.sleep(0.01), timeout=WAIT_TIMEOUT_S)
        except asyncio.TimeoutError:
            stats["timeouts"] += 1
        await asyncio.sleep(0.005)


LEAK_EVERY_S = 0.01


async def hang(never):
    """A task that never finishes: it waits for an event nobody sets."""
    await never.wait()  # MARK:hang


def leak(loop, never):
    """Starts a task that never finishes every 10 ms: 100 more a second."""
    loop.create_task(hang(never))
    loop.call_later(LEAK_EVERY_S, leak, loop, never)


async def ticker():
    """A timer always pending: due within 50 ms of any stall's start."""
    while True:
        await asyncio.sleep(0.05)


async def echo(reader, writer):
    while True:
        data = await reader.read(64)
        if not data:
            break
        writer.write(data)
        await writer.drain()


async def client(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while True:
        writer.write(b"x" * 32)
        await writer.drain()
        await reader.read(64)
        await asyncio.sleep(0.002)


async def serve(mode, ready):
    if mode == "idle":
        ready.set()
        while True:
            await asyncio.sleep(10)  # MARK:idle
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tasks = [asyncio.ensure_future(client(port)) for _ in range(2)]
    loop = asyncio.get_running_loop()
    if mode == "cpu":
        tasks.append(loop.create_task(cpu_injector(), name="cpu-injector"))
    elif mode == "sleep":
        tasks.append(loop.create_task(sleep_injector(), name="sleep-injector"))
    elif mode == "chain":
        tasks.append(asyncio.ensure_future(chain_injector()))
    elif mode == "leak":
        loop.call_soon(leak, loop, asyncio.Event())
    elif mode == "timeouts":
        stats = {"timeouts": 0}
        tasks += [loop.create_task(timed_query(stats), name="query-%d" % i) for i in range(WAITERS)]
        loop.call_later(PERIOD_S - STALL_S, stalling_callback, loop)
    if mode != "healthy":
        tasks.append(loop.create_task(ticker(), name="ticker"))
    ready.set()
    await asyncio.gather(*tasks)


def run_loop(name, mode, pure, ready):
    register(name)
    if "--uvloop" in sys.argv:
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    if pure:
        # (3.14+ pass name= and context= to the factory)
        loop.set_task_factory(lambda loop, coro, **kw: asyncio.tasks._PyTask(coro, loop=loop, **kw))
    asyncio.set_event_loop(loop)
    loop.run_until_complete(serve(mode, ready))


def main():
    mode = sys.argv[1]
    pure = "--pure" in sys.argv
    nloops = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
    events = []
    for i in range(nloops):
        ready = threading.Event()
        events.append(ready)
        threading.Thread(target=run_loop, args=("loop-%d" % i, mode if i == 0 else "healthy",
                                                pure, ready), daemon=True).start()
    for e in events:
        e.wait()
    time.sleep(0.5)
    print(json.dumps({"ready": True, "pid": os.getpid(), "tids": tids,
                      "version": "%d.%d.%d" % sys.version_info[:3]}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
