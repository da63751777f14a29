"""A coroutine driven by hand with send() (no event loop), suspended across a teleport."""
import types

from pyteleport import tp_dummy


@types.coroutine
def tick():
    got = yield "tick"
    return got


async def worker(log):
    total = 0
    for i in range(6):
        total += await tick() or 0
        log.append(total)
    return total


log = []
c = worker(log)
c.send(None)
for n in range(3):
    c.send(n)
tp_dummy()
try:
    while True:
        c.send(10)
except StopIteration as stop:
    print("result", stop.value, log)
