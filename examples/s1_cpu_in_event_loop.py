"""S1: an asyncio service resizes images inside `async def` handlers: while
one request computes, every other request waits. Expected finding: S1,
culprit resize_image."""
from _common import serve_on_loopback


def resize_image(pixels):
    total = 0
    for p in range(pixels):  # pure-Python CPU work on the loop
        total += p * 3 % 7
    return total


async def handle(reader, writer):
    while await reader.read(64):
        resize_image(2_000_000)
        writer.write(b"ok")
        await writer.drain()


if __name__ == "__main__":
    serve_on_loopback(handle, b"GET /thumbnail", pause_s=0.05, settle_s=0.5)
