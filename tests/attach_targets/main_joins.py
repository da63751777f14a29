# Unmodified: the main thread starts a worker and waits in join() for all of the run, so
# it never reaches a safe point of its own: it is carried from its join.
import os
import threading
import time

log = []


def worker():
    for i in range(40):
        time.sleep(0.05)
        log.append(i * i)
        print(f"work {i} pid={os.getpid()}", flush=True)


t = threading.Thread(target=worker, name="worker")
print(f"started pid={os.getpid()}", flush=True)
t.start()
t.join()
print(f"joined {sum(log)} {t.is_alive()} pid={os.getpid()}", flush=True)
