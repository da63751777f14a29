# A thread blocked reading a pipe nobody writes to: not a call pyteleport can make again.
import os
import threading
import time

r, w = os.pipe()


def read_forever():
    os.read(r, 10)


reader = threading.Thread(target=read_forever, daemon=True)
reader.start()
print(f"started pid={os.getpid()}", flush=True)
for i in range(300):
    time.sleep(0.01)
print(f"done pid={os.getpid()}", flush=True)
