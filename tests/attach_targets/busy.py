"""A pure-Python busy loop, three calls deep."""
import os
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 12_000_000


def step(total, i):
    return total + (i * i) % 7


def inner(n):
    total = 0
    for i in range(n):
        total = step(total, i)
        if i % 1_000_000 == 0:
            print(f"progress {i} total {total} pid={os.getpid()}", flush=True)
    return total


def outer():
    return inner(N) * 2


print(f"started pid={os.getpid()}", flush=True)
print(f"result {outer()} pid={os.getpid()}", flush=True)
