"""Reads numbered lines from its standard input (a pipe or a file, read ahead in
chunks by sys.stdin) with a little work between them, and sums them."""
import os
import sys
import time

print(f"started pid={os.getpid()}", flush=True)
total = 0
for n, line in enumerate(sys.stdin):
    total += int(line)
    time.sleep(0.004)
    if n % 20 == 0:
        print(f"line {n} total {total} pid={os.getpid()}", flush=True)
print(f"eof total {total} pid={os.getpid()}", flush=True)
