# A worker holds an RLock (twice) while the main thread waits for it, and the program
# teleports from a third thread: after the move the same threads own and wait on it.
import threading
import time

from pyteleport import dummy_teleport

lock = threading.RLock()
holding = threading.Event()
release = threading.Event()
order = []


def holder():
    with lock:
        with lock:
            holding.set()
            release.wait()
            order.append("holder done")


def mover():
    holding.wait()
    dummy_teleport()
    order.append("moved")
    release.set()


h = threading.Thread(target=holder)
m = threading.Thread(target=mover)
h.start()
m.start()
holding.wait()
with lock:
    order.append("main got the lock")
m.join()
h.join()
print(order)
