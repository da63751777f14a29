import os
import threading
import time


def worker():
    time.sleep(5)


t = threading.Thread(target=worker, name="Helper", daemon=True)
t.start()
print(f"started pid={os.getpid()}", flush=True)
for i in range(200):
    time.sleep(0.01)
print(f"done pid={os.getpid()}", flush=True)
