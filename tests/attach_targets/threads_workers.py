# Unmodified: a heartbeat thread, a queue consumer and a lock holder run while the main
# thread computes; everything is joined at the end.
import os
import queue
import threading
import time

beats = 0
stop = threading.Event()
q = queue.Queue()
consumed = []
lock = threading.RLock()


def heartbeat():
    global beats
    while not stop.wait(0.01):
        beats += 1


def consumer():
    while True:
        item = q.get()
        if item is None:
            break
        consumed.append(item * 2)
        q.task_done()


def holder():
    with lock:
        stop.wait()


threads = [threading.Thread(target=f, name=f.__name__) for f in (heartbeat, consumer, holder)]
for t in threads:
    t.start()
print(f"started pid={os.getpid()}", flush=True)
total = 0
for i in range(300):
    total += sum(range(i * 100))
    q.put(i)
    time.sleep(0.005)
q.join()
print("ticked", beats > 10, flush=True)
stop.set()
q.put(None)
for t in threads:
    t.join()
with lock:
    print(f"done pid={os.getpid()}", total, sum(consumed), [t.is_alive() for t in threads], flush=True)
