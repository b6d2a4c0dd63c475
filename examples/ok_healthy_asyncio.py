"""Negative control: an asyncio echo server with a client on loopback,
nothing blocking. No finding at warning level or above."""
import asyncio
import threading

from _common import args, ready, run_for


async def echo(reader, writer):
    while True:
        data = await reader.read(64)
        if not data:
            return
        writer.write(data)
        await writer.drain()


async def client(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while True:
        writer.write(b"ping")
        await writer.drain()
        await reader.read(64)
        await asyncio.sleep(0.002)


async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    asyncio.ensure_future(client(server.sockets[0].getsockname()[1]))
    await asyncio.sleep(0.3)
    ready()
    await asyncio.Event().wait()


if __name__ == "__main__":
    a = args()
    threading.Thread(target=run_for, args=(a.seconds,), daemon=True).start()
    asyncio.run(main())
