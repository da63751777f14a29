"""A loop with short sleeps, fed by a generator."""
import os
import sys
import time

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 60


def numbers(limit):
    n = 0
    while n < limit:
        yield n, n * n
        n += 1


print(f"started pid={os.getpid()}", flush=True)
acc = []
for i, sq in numbers(COUNT):
    time.sleep(0.01)
    acc.append(sq)
    print(f"item {i} {sq} pid={os.getpid()}", flush=True)
print(f"sum {sum(acc)} pid={os.getpid()}", flush=True)
