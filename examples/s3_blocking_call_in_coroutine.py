"""S3: a coroutine calls a synchronous client (a blocking socket recv on a
slow backend) instead of awaiting: the whole loop stops. Expected finding:
S3, culprit fetch_profile, blocked in recvfrom."""
import asyncio
import socket
import threading
import time

from _common import args, ready, run_for


def slow_backend(server):
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve_slowly, args=(conn,), daemon=True).start()


def serve_slowly(conn):
    while conn.recv(64):
        time.sleep(0.2)
        conn.sendall(b"profile")


def fetch_profile(sock):
    sock.sendall(b"GET /profile")
    return sock.recv(64)  # blocking call inside a coroutine


async def handler_loop(port):
    sock = socket.create_connection(("127.0.0.1", port))
    while True:
        fetch_profile(sock)
        await asyncio.sleep(0.1)


async def main(port):
    asyncio.ensure_future(handler_loop(port))
    await asyncio.sleep(0.5)
    ready()
    await asyncio.Event().wait()


if __name__ == "__main__":
    a = args()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    threading.Thread(target=slow_backend, args=(server,), daemon=True).start()
    threading.Thread(target=run_for, args=(a.seconds,), daemon=True).start()
    asyncio.run(main(server.getsockname()[1]))
