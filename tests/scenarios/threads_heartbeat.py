# A heartbeat thread keeps a counter while the main thread teleports; after the move it
# still ticks, and the main thread stops and joins it.
import os
import threading
import time

from pyteleport import dummy_teleport

ticks = 0
stop = threading.Event()


def heartbeat():
    global ticks
    while not stop.is_set():
        ticks += 1
        time.sleep(0.01)


t = threading.Thread(target=heartbeat, name="heartbeat")
t.start()
time.sleep(0.1)
before = os.getpid()
dummy_teleport()
seen = ticks
time.sleep(0.2)
print("ticking after teleport", ticks > seen)
stop.set()
t.join()
print("joined", t.is_alive(), t.name)
print("threads", sorted(th.name for th in threading.enumerate()))
