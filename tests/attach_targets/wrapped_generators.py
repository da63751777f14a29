"""Loops pulling from generators through C iterators (map, enumerate, filter):
the safe point is usually inside the generator, under the C wrapper. Each loop checks
its own result."""
import os
import sys
import time

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 40


def source(n):
    for i in range(n):
        time.sleep(0.008)
        yield i


print(f"started pid={os.getpid()}", flush=True)
total = 0
for v in map(lambda x: x + 1000, source(COUNT)):
    total += v
print(f"map {total == sum(range(COUNT)) + 1000 * COUNT} pid={os.getpid()}", flush=True)
pairs = 0
for k, v in enumerate(source(COUNT)):
    pairs += k == v
print(f"enumerate {pairs == COUNT} pid={os.getpid()}", flush=True)
odd = [v for v in filter(lambda x: x % 2, source(COUNT))]
print(f"filter {odd == list(range(1, COUNT, 2))} pid={os.getpid()}", flush=True)
