"""Most of the time is spent in frames called back from C, which cannot be resumed as
they stand: a `__next__` driven by a `for` loop, an `__init__` run by a class call, a
`sorted()` key. The move must wait for a moment between them."""
import os
import time


class Ticker:
    def __init__(self, n):
        self.i, self.n = 0, n

    def __iter__(self):
        return self

    def __next__(self):
        time.sleep(0.01)
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return self.i


class Item:
    def __init__(self, k):
        time.sleep(0.005)
        self.k = k


def slow_key(x):
    time.sleep(0.002)
    return -x


print(f"started pid={os.getpid()}", flush=True)
total = 0
for tick in Ticker(30):
    total += tick  # no call in the loop body: its only check is the jump back
print(f"ticks {total} pid={os.getpid()}", flush=True)
for tick in Ticker(10):
    total += tick
    print(f"tick {tick} {total} pid={os.getpid()}", flush=True)
items = []
for k in range(30):
    items.append(Item(k))
    print(f"item {k} pid={os.getpid()}", flush=True)
for round_ in range(5):
    ordered = sorted(range(round_ * 10, round_ * 10 + 10), key=slow_key)
    print(f"sorted {ordered[:3]} pid={os.getpid()}", flush=True)
print(total, sum(i.k for i in items), flush=True)
print(f"done pid={os.getpid()}", flush=True)
