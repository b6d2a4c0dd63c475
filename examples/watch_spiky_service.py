"""For `gilprobe watch`: an asyncio service that is healthy except for two
kinds of spike, at known times after its ready line:
- a 450 ms CPU stall of the event loop in a handler (render_report) at
  each of --stalls seconds (default 12 and 42): S1, culprit render_report;
- a --burst-s (default 2.5 s) burst of 6 CPU-bound threads
  (crunch_numbers) at --burst seconds (default 27): S2.
The rest of the time a client on loopback sends a request every 50 ms and
the handler answers at once. Every spike is printed as a JSON line when it
starts ({"spike": "stall"|"burst", "t": seconds since ready}).

    gilprobe watch -p PID -d 50 --trigger 'loop.stall_max_ms>250' \\
        --trigger 'gil.wait_p99_ms>50'
writes three bundles: S1, S2, S1."""
import asyncio
import json
import threading
import time

from _common import args, name_thread, ready

STALL_MS = 450
BURST_THREADS = 6


def render_report(ms):
    end = time.perf_counter() + ms / 1000.0
    rows = 0
    while time.perf_counter() < end:
        for cell in range(500):  # pure-Python CPU work on the event loop
            rows += cell * 7 % 13
    return rows


def crunch_numbers(until):
    name_thread("cruncher")
    x = 0
    while time.perf_counter() < until:
        for _ in range(500):
            x = (x * 31 + 7) % 1000003
    return x


def announce(kind, start):
    print(json.dumps({"spike": kind, "t": round(time.perf_counter() - start, 3)}), flush=True)


def burst_at(start, at_s, length_s):
    time.sleep(max(0.0, start + at_s - time.perf_counter()))
    announce("burst", start)
    until = time.perf_counter() + length_s
    workers = [threading.Thread(target=crunch_numbers, args=(until,), name=f"cruncher-{i}")
               for i in range(BURST_THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def options(p):
    p.add_argument("--stalls", default="12,42", help="seconds after ready of each loop stall")
    p.add_argument("--burst", type=float, default=27.0, help="seconds after ready of the burst")
    p.add_argument("--burst-s", type=float, default=2.5, help="how long the burst lasts")


async def serve(a):
    async def handle(reader, writer):
        while await reader.read(64):
            writer.write(b"ok")
            await writer.drain()

    async def client(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            writer.write(b"GET /status")
            await writer.drain()
            await reader.read(64)
            await asyncio.sleep(0.05)

    async def reports(start):
        for at in sorted(float(s) for s in a.stalls.split(",") if s):
            await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
            announce("stall", start)
            render_report(STALL_MS)  # the handler that stalls the loop

    name_thread("event-loop")
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    asyncio.ensure_future(client(server.sockets[0].getsockname()[1]))
    await asyncio.sleep(0.3)
    start = time.perf_counter()
    threading.Thread(target=burst_at, args=(start, a.burst, a.burst_s), daemon=True,
                     name="burster").start()
    ready(loop_tid=threading.get_native_id())
    asyncio.ensure_future(reports(start))
    await asyncio.sleep(a.seconds)


if __name__ == "__main__":
    asyncio.run(serve(args(options)))
