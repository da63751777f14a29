"""A loop under a tqdm progress bar (its monitor thread on), the bar on stderr."""
import os
import time

from tqdm import tqdm

tqdm.monitor_interval = 0.05
print(f"started pid={os.getpid()}", flush=True)
total = 0
for i in tqdm(range(80), desc="records", mininterval=0):
    total += i * i
    time.sleep(0.01)
    if i % 10 == 0:
        print(f"at {i} total {total} pid={os.getpid()}", flush=True)
print("monitor", tqdm.monitor is None or tqdm.monitor.name, flush=True)
print(f"done {total} pid={os.getpid()}", flush=True)
