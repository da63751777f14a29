# Unmodified: a service-style loop whose main thread sleeps long between rounds; an
# attach during a sleep carries it from the sleep (made again in the new process).
import os
import time

state = {"rounds": 0}
print(f"started pid={os.getpid()}", flush=True)
for i in range(3):
    time.sleep(1.6)
    state["rounds"] += 1
    print(f"round {i} {state} pid={os.getpid()}", flush=True)
print(f"done pid={os.getpid()}", flush=True)
