"""Memoized functions (functools.lru_cache and cache) in use across the move: their
caches are carried, so a function that reports its misses reports none twice."""
import functools
import os
import time

misses = []


@functools.lru_cache(maxsize=None)
def fib(n):
    misses.append(n)
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@functools.lru_cache(maxsize=8, typed=True)
def scaled(x, factor=1, *, offset=0):
    print(f"  computing scaled({x!r}, {factor}, offset={offset}) pid={os.getpid()}", flush=True)
    return x * factor + offset


def make_counter(step):
    @functools.cache
    def count(n):
        print(f"  counting {n} by {step} pid={os.getpid()}", flush=True)
        return list(range(0, n, step))
    return count


by_three = make_counter(3)
print(f"started pid={os.getpid()}", flush=True)
for round_ in range(40):
    time.sleep(0.01)
    value = fib(round_ * 5)
    s = scaled(round_ % 10, factor=2) + scaled(float(round_ % 3), offset=1) + scaled(round_ % 4)
    c = by_three(round_ % 6)
    print(f"round {round_} {value % 1000} {s} {c} pid={os.getpid()}", flush=True)
print(len(misses), fib.cache_info(), scaled.cache_info(), by_three.cache_info(), fib.__wrapped__.__name__, flush=True)
print(f"done pid={os.getpid()}", flush=True)
