# Threads, a Condition with a waiter, a Semaphore and a Barrier in flight across a
# teleport from the main thread.
import threading

from pyteleport import dummy_teleport

cond = threading.Condition()
items = []
sem = threading.Semaphore(2)
barrier = threading.Barrier(3)
log = []


def waiter(name):
    with cond:
        while not items:
            cond.wait()
        log.append((name, items.pop()))
    barrier.wait()


ws = [threading.Thread(target=waiter, args=(f"w{i}",)) for i in range(2)]
for w in ws:
    w.start()
with sem:
    dummy_teleport()
    with cond:
        items.extend(["a", "b"])
        cond.notify_all()
barrier.wait()
for w in ws:
    w.join()
print(sorted(name for name, _ in log), sorted(item for _, item in log), sem._value)
