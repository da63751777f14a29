# A worker computes while the main thread teleports, and is joined afterwards: its result
# and its Thread object are the same program's.
import threading

from pyteleport import dummy_teleport

results = {}


def work(n):
    total = 0
    for i in range(n):
        total += i * i
        if i % 500_000 == 0:
            results.setdefault("progress", []).append(i)
    results["total"] = total


worker = threading.Thread(target=work, args=(3_000_000,))
worker.start()
dummy_teleport()
worker.join()
print("total", results["total"], "alive", worker.is_alive())
print("progress", results["progress"])
print("current", threading.current_thread() is threading.main_thread())
