"""Worker threads keeping per-thread state in threading.local (a counter per thread),
while the main thread keeps its own."""
import os
import threading
import time

state = threading.local()
stop = threading.Event()
totals = {}


def worker(step):
    state.count = 0
    state.step = step
    while not stop.wait(0.005):
        state.count += state.step
    totals[threading.current_thread().name] = (state.step, state.count > 0)


state.count = 1000
threads = [threading.Thread(target=worker, args=(s,), name=f"w{s}") for s in (1, 2, 3)]
for t in threads:
    t.start()
print(f"started pid={os.getpid()}", flush=True)
for i in range(60):
    state.count += 1
    time.sleep(0.01)
    print(i, state.count, f"pid={os.getpid()}", flush=True)
stop.set()
for t in threads:
    t.join()
print(sorted(totals.items()), state.count, flush=True)
print(f"done pid={os.getpid()}", flush=True)
