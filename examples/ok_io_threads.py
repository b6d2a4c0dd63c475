"""Negative control: four threads doing loopback I/O and short sleeps. No
finding at warning level or above."""
import socket
import threading
import time

from _common import args, ready, run_for


def echo(conn):
    while True:
        data = conn.recv(64)
        if not data:
            return
        conn.sendall(data)


def client(sock):
    while True:
        sock.sendall(b"ping")
        sock.recv(64)
        time.sleep(0.005)


if __name__ == "__main__":
    a = args()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    for _ in range(2):
        c = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()
        threading.Thread(target=client, args=(c,), daemon=True).start()
    time.sleep(0.3)
    ready()
    run_for(a.seconds)
