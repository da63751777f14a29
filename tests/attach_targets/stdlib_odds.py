"""Odds and ends of the standard library alive across the move: a loop over a set in
flight, SimpleNamespace, struct_time and other struct sequences, sys.version_info."""
import os
import sys
import time
import types

config = types.SimpleNamespace(name="job", retries=3, tags=("a", "b"))
epoch = time.gmtime(0)
stat = os.stat(__file__)
version = sys.version_info
numbers = set(range(0, 200, 3))
print(f"started pid={os.getpid()}", flush=True)
seen = 0
for n in numbers:
    seen += n
    if n % 9 == 0:
        time.sleep(0.04)  # long enough for a loaded machine's attach to arrive
        print(f"n {n} {seen} pid={os.getpid()}", flush=True)
config.retries -= 1
print(config, epoch.tm_year, epoch[0:3], type(epoch).__name__, stat.st_size == os.stat(__file__).st_size, stat.st_mtime == os.stat(__file__).st_mtime, epoch.tm_zone, flush=True)
print(version >= (3, 11), version.major, type(version).__name__, seen, flush=True)
print(f"done pid={os.getpid()}", flush=True)
