"""asyncio tasks with known names, states and waits, for `dump --tasks`.

One event loop (the main thread) with: `alpha` waiting on an Event, `beta`
on a Lock that `holder` keeps, `gamma` on an empty Queue, `sleeper` in
asyncio.sleep, `g-0` and `g-1` gathered by `main` (which awaits the
gather), `pure-one` (a pure-Python Task) waiting on an Event, `done-one`
finished (and still referenced), `deep` three coroutines deep
(level1 -> level2 -> level3 -> Event.wait), `timed` in
`wait_for(..., timeout=3600)`, on 3.11+ `tg-parent` waiting for its
TaskGroup's `tg-0` and `tg-1` (asleep), and `spinner`, which spins on the
CPU for ever once the ready line is out: the loop's running task. Prints
one JSON line, {"ready", "pid", "tasks": {name: id(task) as hex}}, then
spins.
"""
import asyncio
import json
import os
import time


async def wait_event(ev):
    await ev.wait()


async def hold(lock, ev):
    async with lock:
        await ev.wait()


async def take_lock(lock):
    async with lock:
        pass


async def take(queue):
    await queue.get()


async def nap():
    await asyncio.sleep(3600)


async def done():
    return 1


async def level3(ev):
    await ev.wait()


async def level2(ev):
    await level3(ev)


async def level1(ev):
    await level2(ev)


async def timed(ev):
    await asyncio.wait_for(ev.wait(), timeout=3600)


async def group(tasks):
    async with asyncio.TaskGroup() as tg:
        for i in range(2):
            tasks["tg-%d" % i] = tg.create_task(nap(), name="tg-%d" % i)


async def spin(started):
    await started.wait()
    while True:  # the loop never gets back: this task stays the running one
        time.sleep(0)


def named(task, name, tasks):
    task.set_name(name)
    tasks[name] = task
    return task


async def main():
    loop = asyncio.get_running_loop()
    tasks = {}
    named(asyncio.current_task(), "main", tasks)
    ev, lock, queue, started = asyncio.Event(), asyncio.Lock(), asyncio.Queue(), asyncio.Event()
    named(asyncio.ensure_future(wait_event(ev)), "alpha", tasks)
    named(asyncio.ensure_future(hold(lock, ev)), "holder", tasks)
    await asyncio.sleep(0.05)  # holder has the lock
    named(asyncio.ensure_future(take_lock(lock)), "beta", tasks)
    named(asyncio.ensure_future(take(queue)), "gamma", tasks)
    named(asyncio.ensure_future(nap()), "sleeper", tasks)
    named(asyncio.tasks._PyTask(wait_event(ev), loop=loop), "pure-one", tasks)
    finished = named(asyncio.ensure_future(done()), "done-one", tasks)
    named(asyncio.ensure_future(level1(ev)), "deep", tasks)
    named(asyncio.ensure_future(timed(ev)), "timed", tasks)
    if hasattr(asyncio, "TaskGroup"):  # 3.11+
        named(asyncio.ensure_future(group(tasks)), "tg-parent", tasks)
    named(asyncio.ensure_future(spin(started)), "spinner", tasks)
    gathered = [named(asyncio.ensure_future(nap()), "g-%d" % i, tasks) for i in range(2)]
    await asyncio.sleep(0.1)
    assert finished.done()
    print(json.dumps({"ready": True, "pid": os.getpid(),
                      "tasks": {n: hex(id(t)) for n, t in tasks.items()}}),
          flush=True)
    started.set()
    await asyncio.gather(*gathered)


asyncio.run(main())
