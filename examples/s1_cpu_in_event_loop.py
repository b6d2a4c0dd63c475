"""S1: an asyncio service resizes images inside `async def` handlers: while
one request computes, every other request waits. Expected finding: S1,
culprit resize_image.

Each resize burns CPU for --stall-ms of wall time (default 200 ms: stalls
above gilprobe's 100 ms threshold); the client pauses --pause-ms between
requests. With --stall-ms 30 --pause-ms 10 no single stall reaches the
threshold, but the loop is busy ~75% of the time in resize_image: S1 all
the same (the loop is saturated)."""
import time

from _common import args, serve_on_loopback


def resize_image(ms):
    end = time.perf_counter() + ms / 1000.0
    total = 0
    while time.perf_counter() < end:
        for p in range(1000):  # one row of pixels: pure-Python CPU work on the loop
            total += p * 3 % 7
    return total


def options(p):
    p.add_argument("--stall-ms", type=float, default=200, help="CPU time per request (wall ms)")
    p.add_argument("--pause-ms", type=float, default=50, help="client pause between requests")


if __name__ == "__main__":
    a = args(options)

    async def handle(reader, writer):
        while await reader.read(64):
            resize_image(a.stall_ms)
            writer.write(b"ok")
            await writer.drain()

    serve_on_loopback(handle, b"GET /thumbnail", pause_s=a.pause_ms / 1000.0, settle_s=0.5,
                      seconds=a.seconds)
