"""S1: an asyncio service resizes images inside `async def` handlers: while
one request computes, every other request waits. Expected finding: S1,
culprit resize_image."""
import asyncio

from _common import args, ready, run_for
import threading


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


async def client(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while True:
        writer.write(b"GET /thumbnail")
        await writer.drain()
        await reader.read(64)
        await asyncio.sleep(0.05)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    asyncio.ensure_future(client(port))
    await asyncio.sleep(0.5)
    ready()
    await asyncio.Event().wait()


if __name__ == "__main__":
    a = args()
    threading.Thread(target=run_for, args=(a.seconds,), daemon=True).start()
    asyncio.run(main())
