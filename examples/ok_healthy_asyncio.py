"""Negative control: an asyncio echo server with a client on loopback,
nothing blocking. No finding at warning level or above."""
from _common import serve_on_loopback


async def echo(reader, writer):
    while True:
        data = await reader.read(64)
        if not data:
            return
        writer.write(data)
        await writer.drain()


if __name__ == "__main__":
    serve_on_loopback(echo, b"ping", pause_s=0.002)
