"""The task benchmark's target: N asyncio tasks (default 1000), each three
coroutines deep and asleep, in gathers of 10 awaited by their own tasks
(so N/10 more), plus one task that stays the loop's running one.
Prints {"ready", "pid", "tasks"} once they all wait."""
import asyncio
import json
import os
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000


async def inner():
    await asyncio.sleep(3600)


async def middle():
    await inner()


async def outer():
    await middle()


async def gathered(k):
    await asyncio.gather(*(asyncio.ensure_future(outer()) for _ in range(k)))


async def main():
    for i in range(0, N, 10):
        asyncio.ensure_future(gathered(min(10, N - i)))
    await asyncio.sleep(0.2)
    print(json.dumps({"ready": True, "pid": os.getpid(), "tasks": len(asyncio.all_tasks())}),
          flush=True)
    while True:  # the loop never gets back: this task stays the running one
        time.sleep(0.1)


asyncio.run(main())
